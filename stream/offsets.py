"""Consumer offsets kept in the database, tied to the topic's identity, moved with fencing.

A row per (group, topic, partition) holds the next offset to read and the Kafka topic id it
belongs to. :func:`advance` moves a batch's partitions inside the caller's transaction only if
each still holds the offset this consumer last saw; otherwise :class:`OffsetConflict` (another
member committed first, e.g. a zombie after a rebalance) and the caller rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from store.tables import consumer_offsets

log = logging.getLogger(__name__)

#: (topic, partition)
TP = tuple[str, int]


class OffsetConflict(RuntimeError):
    """Another consumer moved these partitions first; the batch must be rolled back."""


class BatchSuperseded(RuntimeError):
    """Raised by a batch's ``write``, inside its commit transaction, when what the batch was
    computed with is no longer current (the scorer's model after a promotion): the transaction
    rolls back, the batch is dropped, its partitions are re-read from the stored offsets, and
    the pipeline's ``before_batch`` catches up (or stops the consumer) before the next one."""


@dataclass(frozen=True)
class Stored:
    """What the database holds for one partition."""

    next_offset: int
    topic_id: str | None


def load(engine: Engine, group_id: str, partitions: Iterable[TP]) -> dict[TP, Stored]:
    """The stored positions of ``partitions`` for ``group_id`` (absent = never committed)."""
    wanted = set(partitions)
    c = consumer_offsets.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.topic, c.partition, c.next_offset, c.topic_id)
                            .where(c.group_id == group_id)).all()
    return {(t, p): Stored(int(o), i) for t, p, o, i in rows if (t, p) in wanted}


def commit_to_kafka(consumer: Any, next_offsets: Mapping[TP, int]) -> None:
    """Best-effort offset commit to Kafka for lag monitoring (the database is authoritative)."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    committed = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                 for (t, p), o in next_offsets.items()}
    try:
        consumer.commit_async(committed)
    except Exception as exc:  # noqa: BLE001 - monitoring only
        log.debug("kafka offset commit skipped: %s", exc)


_c = consumer_offsets.c
_SET = {"next_offset": bindparam("new_offset"), "topic_id": bindparam("new_topic_id"),
        "updated_at": bindparam("at")}
# built once: per batch, building them cost more than running them
_INSERT = consumer_offsets.insert().values(group_id=bindparam("g"), topic=bindparam("t"),
                                           partition=bindparam("p"), **_SET)
_MOVE = update(consumer_offsets).where(
    _c.group_id == bindparam("g"), _c.topic == bindparam("t"), _c.partition == bindparam("p"),
    _c.next_offset == bindparam("before")).values(**_SET)


def advance(conn: Connection, group_id: str, expected: Mapping[TP, int | None],
            next_offsets: Mapping[TP, int], topic_ids: Mapping[str, str | None]) -> None:
    """Move each partition of ``next_offsets`` from ``expected[tp]`` (None = no row yet).

    Raises :class:`OffsetConflict` if any partition moved meanwhile (the caller's transaction
    must then be rolled back; the IntegrityError of a concurrent first insert means the same).
    """
    now = datetime.now(UTC)
    for (topic, partition), offset in next_offsets.items():
        before = expected.get((topic, partition))
        row = {"g": group_id, "t": topic, "p": partition, "new_offset": offset,
               "new_topic_id": topic_ids.get(topic), "at": now}
        if before is None:
            conn.execute(_INSERT, row)
            continue
        moved = conn.execute(_MOVE, {**row, "before": before}).rowcount
        if moved != 1:
            raise OffsetConflict(f"{topic}[{partition}] moved past {before}")
