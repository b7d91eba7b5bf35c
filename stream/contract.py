"""The skeleton's contract with a part: the effects a batch returns (:class:`BatchEffects`), the
pipeline that computes them (:class:`Pipeline`), the consumer's settings (:class:`ConsumerConfig`)
and its run summary (:class:`ConsumerSummary`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from stream.deadletters import DeadLetter, Outgoing
from stream.drained import Left


@dataclass(frozen=True)
class BatchEffects:
    """What a batch does: messages to publish, dead letters, and its SQL writes (run inside the
    transaction that also moves the offsets), plus counters for the run summary."""

    publish: list[Outgoing] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    write: Callable[[Connection], None] | None = None
    stats: Mapping[str, int] = field(default_factory=dict)
    scores: Sequence[float] = ()  # for metrics only: the scores of this batch (scorer)
    #: Partitions whose records from this offset on were not processed yet (they wait for the
    #: rest of the stream, e.g. keyed scoring's event-time bound): not committed, re-read later.
    deferred: Mapping[tuple[str, int], int] = field(default_factory=dict)


class Pipeline(Protocol):
    """A part's processing: records (in partition order) → effects. Pure; may be re-run on any
    sub-sequence of a batch (that is how a permanent fault is isolated). A pipeline may also
    have a ``before_batch()`` method: the consumer calls it once before each polled batch (a
    batch boundary, e.g. the scorer's hot reload), never between the parts of a split batch."""

    def process(self, records: Sequence[Any]) -> BatchEffects: ...


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap: str
    topic: str
    group_id: str
    dlq_topic: str
    client_id: str = "fraudstream"
    batch_size: int = 2000
    until_idle: float | None = None  # exit once drained after this many seconds without events
    drain_wait_s: float = 60.0  # idle with events left that nothing moves: give up after this
    max_messages: int | None = None  # exit after consuming this many
    poll_timeout_ms: int = 500
    retry_limit_s: float = 300.0  # give up on an unreachable DB/broker after this long
    #: The group's session timeout (kafka-python's default; heartbeats every 3 s, so >= 9 s
    #: avoids its warning): how long a dead member holds its partitions.
    session_timeout_ms: int = 45_000
    #: Out of a stable group (no coordinator, or no assignment received) for this many session
    #: timeouts while polling: close the KafkaConsumer and subscribe a new one (same group).
    recreate_after_sessions: float = 3.0


@dataclass
class ConsumerSummary:
    consumed: int = 0
    dlq: int = 0
    isolated: int = 0  # messages dead-lettered because of a permanent fault
    conflicts: int = 0  # batches dropped because another member committed first
    superseded: int = 0  # batches dropped because their write was fenced (BatchSuperseded)
    topic_resets: int = 0  # partitions re-read from the start after a topic was recreated
    recreated: int = 0  # KafkaConsumers closed and replaced after being out of the group
    left: list[Left] = field(default_factory=list)  # until_idle gave up with these events left
    stats: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    busy_seconds: float = 0.0
    #: this process's CPU time (all threads) over ``busy_seconds``: its cost per event, which
    #: other load on the machine changes far less than the rate
    busy_cpu_seconds: float = 0.0
    rate: float = 0.0
