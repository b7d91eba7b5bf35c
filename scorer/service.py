"""The scorer loop: consume → decode → score → publish alerts/dead letters → commit to SQL.

Reads top-down; the pure steps live in :mod:`scorer.decode` and :mod:`scorer.process`, the
database effects in :mod:`scorer.sink`. The database is the source of truth for offsets: on
partition assignment the consumer seeks to the stored offsets, and each batch's effects and
next offsets are committed in one transaction, fenced against concurrent scorers. Alerts and
dead letters are published (and their delivery confirmed) *before* that commit, so a crash
can repeat them (consumers de-duplicate on the key) but never lose them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from schemas.errors import FraudstreamError
from scorer.decode import DeadLetter, decode_batch
from scorer.process import Counts, ScoringModel, score_batch
from scorer.sink import OffsetConflict, commit_batch, load_offsets

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ScoreConfig:
    bootstrap: str
    topic: str = "transactions"
    group_id: str = "fraudstream-scorer"
    batch_size: int = 2000
    until_idle: float | None = None
    max_messages: int | None = None
    alerts_topic: str = "alerts"
    dlq_topic: str = "transactions.dlq"
    poll_timeout_ms: int = 500
    retry_limit_s: float = 300.0  # give up on an unreachable DB/broker after this long


@dataclass
class ScoreSummary:
    model_version: int
    consumed: int = 0
    scored: int = 0
    flagged: int = 0
    dlq: int = 0
    conflicts: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    busy_seconds: float = 0.0
    rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        for tp in revoked:
            self.scorer.stored.pop((tp.topic, tp.partition), None)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.scorer.resync(assigned)
        self.scorer.joined_at = self.scorer.joined_at or time.monotonic()


class Scorer:
    """One member of the scorer consumer group."""

    def __init__(self, config: ScoreConfig, engine: Engine, model: ScoringModel) -> None:
        self.config, self.engine, self.model = config, engine, model
        self.stored: dict[tuple[str, int], int] = {}  # what the DB holds for our partitions
        self.summary = ScoreSummary(model_version=model.version)
        self._counts = Counts()
        self._stop = False
        self.joined_at: float | None = None  # first assignment: the idle clock starts there
        common = {"bootstrap_servers": config.bootstrap, "client_id": "fraudstream-scorer"}
        self.consumer = KafkaConsumer(
            group_id=config.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=config.batch_size, fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024, **common)
        self.producer = KafkaProducer(acks="all", retries=5, linger_ms=5, **common)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> ScoreSummary:
        """Consume until stopped (signal, ``until_idle`` or ``max_messages``); return totals."""
        self._install_signal_handlers()
        self.consumer.subscribe([self.config.topic], listener=_SeekToStoredOffsets(self))
        started = time.monotonic()
        last_activity: float | None = None
        first_record: float | None = None
        try:
            while not self._stop and not self._quota_reached():
                records = self._poll()
                now = time.monotonic()
                if not records:
                    # Idle time counts from joining the group (a rebalance that waits for
                    # crashed members to time out is not idleness), then from the last event.
                    since = last_activity or self.joined_at
                    idle = self.config.until_idle
                    if idle is not None and since is not None and now - since >= idle:
                        break
                    continue
                first_record = first_record or now
                self._process(records)
                last_activity = time.monotonic()
        finally:
            self._close()
        s = self.summary
        s.seconds = time.monotonic() - started
        s.busy_seconds = (last_activity - first_record) if first_record and last_activity else 0.0
        s.rate = s.consumed / s.busy_seconds if s.busy_seconds else 0.0
        s.counts = {**asdict(self._counts), "scored": self._counts.scored}
        return s

    def _poll(self) -> list[Any]:
        limit = self.config.batch_size
        if self.config.max_messages is not None:
            limit = min(limit, self.config.max_messages - self.summary.consumed)
        polled = self.consumer.poll(timeout_ms=self.config.poll_timeout_ms, max_records=limit)
        return [r for batch in polled.values() for r in batch]

    def _process(self, records: list[Any]) -> None:
        batch = decode_batch(records)
        scored = score_batch(batch, self.model)
        next_offsets: dict[tuple[str, int], int] = {}
        for r in records:
            next_offsets[(r.topic, r.partition)] = r.offset + 1
        self._publish(scored.alerts, batch.dead)
        expected = {tp: self.stored[tp] for tp in next_offsets if tp in self.stored}
        try:
            self._retry("database commit", lambda: commit_batch(
                self.engine, group_id=self.config.group_id, model_version=self.model.version,
                expected=expected, next_offsets=next_offsets, alert_rows=scored.alert_rows,
                counts=scored.counts))
        except OffsetConflict as exc:
            log.warning("batch dropped, another scorer committed first (%s); re-seeking", exc)
            self.summary.conflicts += 1
            self.resync(list(self.consumer.assignment()))
            return
        self.stored.update(next_offsets)
        self._commit_to_kafka(next_offsets)
        s = self.summary
        s.consumed += len(records)
        s.scored += scored.counts.scored
        s.flagged += len(scored.alerts)
        s.dlq += len(batch.dead)
        self._counts = self._counts + scored.counts

    # -- edges ---------------------------------------------------------------------------
    def resync(self, partitions: Sequence[TopicPartition]) -> None:
        """Seek ``partitions`` to the offsets stored in the database (start if none)."""
        stored = self._retry("read stored offsets", lambda: load_offsets(
            self.engine, self.config.group_id, [(tp.topic, tp.partition) for tp in partitions]))
        fresh = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key in stored:
                self.stored[key] = stored[key]
                self.consumer.seek(tp, stored[key])
            else:
                self.stored.pop(key, None)
                fresh.append(tp)
        if fresh:
            self.consumer.seek_to_beginning(*fresh)
        log.info("assigned %s; stored offsets %s",
                 sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions), stored)

    def _publish(self, alerts: Sequence[Any], dead: Sequence[DeadLetter]) -> None:
        """Send alerts and dead letters and wait until the broker has confirmed every one."""
        if not alerts and not dead:
            return

        def send_all() -> None:
            futures = [self.producer.send(self.config.alerts_topic,
                                          key=a.transaction_id.encode(),
                                          value=a.model_dump_json().encode()) for a in alerts]
            for d in dead:
                r = d.record
                headers = [("fraudstream.error", d.reason.encode()),
                           ("fraudstream.source", f"{r.topic}/{r.partition}/{r.offset}".encode())]
                futures.append(self.producer.send(self.config.dlq_topic, key=r.key,
                                                  value=r.value or b"", headers=headers))
            self.producer.flush()
            for f in futures:
                f.get(timeout=30)

        self._retry("publish alerts/dead letters", send_all)

    def _commit_to_kafka(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Best-effort offset commit to Kafka for lag monitoring (the DB is authoritative)."""
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                   for (t, p), o in next_offsets.items()}
        try:
            self.consumer.commit_async(offsets)
        except Exception as exc:  # noqa: BLE001 - monitoring only
            log.debug("kafka offset commit skipped: %s", exc)

    def _retry(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``, retrying broker/database outages with backoff (not conflicts)."""
        delay, deadline = 0.5, time.monotonic() + self.config.retry_limit_s
        while True:
            try:
                return action()
            except OffsetConflict:
                raise
            except (DBAPIError, KafkaError, OSError) as exc:
                if time.monotonic() > deadline or (self._stop and delay > 4):
                    raise FraudstreamError(
                        f"{what} failed, giving up (nothing was committed for this batch; it is "
                        f"re-read on restart): {str(exc).splitlines()[0] if str(exc) else exc!r}"
                    ) from exc
                log.warning("%s failed (%s); retrying in %.1fs", what,
                            str(exc).splitlines()[0] if str(exc) else repr(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def request_stop(self) -> None:
        """Finish the current batch, commit, and return from :meth:`run`."""
        self._stop = True

    def _quota_reached(self) -> bool:
        limit = self.config.max_messages
        return limit is not None and self.summary.consumed >= limit

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: Any) -> None:
            log.info("signal %s: finishing the current batch, then exiting", signum)
            self._stop = True

        if threading.current_thread() is not threading.main_thread():
            return  # embedded use (tests, notebooks): the caller stops us via request_stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, request_stop)

    def _close(self) -> None:
        try:
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
        finally:
            self.consumer.close(autocommit=False)
