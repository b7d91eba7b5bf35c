"""``--until-idle`` means drained: idle, and every partition of the topic committed (in the
store) up to its end offset.

A member that is idle may still not be done: another member of its group — or a dead one whose
session has not expired yet (45 s by default) — may hold partitions with events left. So once
idle, the consumer measures what is left (:func:`measure`) and :class:`DrainWatch` decides: stop
when nothing is left; keep waiting while something moves (another member commits, a rebalance
hands the partitions over); give up when the same events have been left for ``wait_s``. Giving
up is reported per partition (:func:`describe`) and the commands exit non-zero
(:func:`require_drained`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

import stream.offsets as offsets
from schemas.errors import FraudstreamError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Left:
    """Events of one partition not committed yet: offsets ``done`` .. ``end`` - 1."""

    topic: str
    partition: int
    done: int  # next offset committed in the store (or read past by this member)
    end: int  # the partition's end offset (read_committed: the last stable offset)

    @property
    def events(self) -> int:
        return self.end - self.done

    @property
    def name(self) -> str:
        return f"{self.topic}[{self.partition}]"


class NotDrained(FraudstreamError):
    """``--until-idle`` gave up with events left (exit status 3)."""

    exit_code = 3


def left_over(topic: str, begin: Mapping[int, int], end: Mapping[int, int],
              stored: Mapping[int, int], positions: Mapping[int, int]) -> list[Left]:
    """The partitions of ``topic`` with events left (pure). A partition is done up to the offset
    stored for it (none stored: its beginning), or up to this member's position where it owns
    the partition and has read further (past aborted transactions and their markers, which
    no record commits)."""
    left = []
    for partition in sorted(end):
        done = max(stored.get(partition, begin.get(partition, 0)), positions.get(partition, 0))
        if done < end[partition]:
            left.append(Left(topic, partition, done, end[partition]))
    return left


def measure(consumer: Any, engine: Engine, group_id: str, topic: str,
            topic_id: str | None) -> list[Left] | None:
    """What is left of ``topic`` for ``group_id`` (a subscribed kafka-python consumer, the
    store's offsets); None if the broker or the store cannot say right now. Offsets stored for
    an older incarnation of the topic (another topic id) count as nothing stored."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        begin = {tp.partition: o for tp, o in consumer.beginning_offsets(tps).items()}
        end = {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
        owned = [tp for tp in consumer.assignment() if tp.topic == topic]
        positions = {tp.partition: consumer.position(tp) for tp in owned}
        rows = offsets.load(engine, group_id, [(topic, p) for p in partitions])
    except (KafkaError, SQLAlchemyError, OSError) as exc:
        log.debug("cannot measure what is left of %s yet: %s", topic, exc)
        return None
    stored = {p: row.next_offset for (_, p), row in rows.items()
              if not (row.topic_id and topic_id and row.topic_id != topic_id)}
    return left_over(topic, begin, end, stored, positions)


class DrainWatch:
    """Once idle: stop when drained; give up when the same events have been left for
    ``wait_s`` seconds (nothing committed them, no rebalance handed them over)."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self._seen: tuple[tuple[int, int, int], ...] | None = None
        self._since = 0.0

    def check(self, consumer: Any, engine: Engine, group_id: str, topic: str,
              topic_id: Callable[[str], str | None], now: float) -> list[Left] | None:
        """Idle: what is left when the member should stop (``[]``: drained; else it gives up
        with those events left), None to keep waiting."""
        left = measure(consumer, engine, group_id, topic, topic_id(topic))
        if left is None or not self.should_stop(left, now):
            return None
        return left

    def should_stop(self, left: Sequence[Left], now: float) -> bool:
        if not left:
            return True
        seen = tuple((x.partition, x.done, x.end) for x in left)
        if seen != self._seen:  # something moved: wait again
            first = self._seen is None
            self._seen, self._since = seen, now
            log.log(logging.INFO if first else logging.DEBUG,
                    "idle, but not drained: %s; waiting while they move (giving up after %.0fs "
                    "without progress)", describe(left), self.wait_s)
        return now - self._since >= self.wait_s

    def reset(self) -> None:
        self._seen = None


def describe(left: Sequence[Left]) -> str:
    """``transactions[1]: 1,234 events left (committed 10,000 of 11,234); …``."""
    return "; ".join(f"{x.name}: {x.events:,} events left (committed {x.done:,} of {x.end:,})"
                     for x in left)


def left_dict(left: Sequence[Left]) -> dict[str, int]:
    """For a JSON summary: ``{"transactions[1]": 1234, ...}`` (empty: drained)."""
    return {x.name: x.events for x in left}


def require_drained(left: Sequence[Left], group_id: str, waited_s: float) -> None:
    """The commands' exit: :class:`NotDrained` naming every partition with events left."""
    if left:
        total = sum(x.events for x in left)
        raise NotDrained(
            f"idle, but {total:,} events are left and nothing moved them for {waited_s:.0f}s: "
            f"{describe(left)}. Another member of group '{group_id}' holds those partitions (or "
            "held them: a killed one keeps them until its session expires); run again to finish")
