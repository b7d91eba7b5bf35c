"""The consumer skeleton: poll → process (pure, the part's own) → publish → commit, per batch.

The database is the source of truth for offsets: on partition assignment the consumer seeks to
the stored offsets (from the beginning when the topic was recreated since — its Kafka topic id
differs — and it says so), and each batch's SQL effects and next offsets are committed in one
transaction, fenced against concurrent members. Messages (alerts, dead letters) are published
and confirmed *before* that commit: a crash can repeat them (consumers de-duplicate on the key)
but never lose them.

Faults: a transient one (broker or database unreachable, lock timeout) is retried with backoff
for up to ``retry_limit_s``; a permanent one (a value the database refuses, a message the broker
will not take) is isolated by splitting the batch until the one message that causes it is
dead-lettered by reference, so it never blocks its partition.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

import stream.offsets as offsets
from schemas.errors import FraudstreamError, first_line
from stream.contract import ConsumerConfig, ConsumerSummary, Pipeline
from stream.deadletters import DeadLetter, Outgoing, dead_letter_message
from stream.drained import DrainWatch
from stream.faults import is_transient
from stream.heap import freeze_start_up
from stream.membership import MembershipWatch, in_group, replacement, retire

if TYPE_CHECKING:
    from metrics import ConsumerMetrics

log = logging.getLogger(__name__)
#: Consumer lag is refreshed at most this often (seconds) when metrics are on.
LAG_REFRESH_S = 5.0
#: When a batch was deferred entirely, wait this long (seconds) before polling again.
DEFER_PAUSE_S = 0.05
T = TypeVar("T")


class PermanentFault(Exception):
    """A step failed in a way retrying cannot fix (raised by :meth:`SqlConsumer._retry`)."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {first_line(cause)}")


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    def __init__(self, owner: SqlConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        for tp in revoked:
            self.owner.stored.pop((tp.topic, tp.partition), None)
            if self.owner.metrics is not None:
                self.owner.metrics.forget_partition(tp.topic, tp.partition)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.owner.resync(assigned)
        self.owner.joined_at = self.owner.joined_at or time.monotonic()


class SqlConsumer:
    """One member of a consumer group that turns ``config.topic`` into SQL effects."""

    def __init__(self, config: ConsumerConfig, engine: Engine, pipeline: Pipeline,
                 metrics: ConsumerMetrics | None = None) -> None:
        self.config, self.engine, self.pipeline = config, engine, pipeline
        self.metrics = metrics  # None: no metrics, no cost beyond an `if`
        self._lag_at = 0.0  # when consumer lag was last exported
        self.stored: dict[offsets.TP, int | None] = {}  # what the DB holds for our partitions
        self.topic_ids: dict[str, str | None] = {}
        self.summary = ConsumerSummary()
        self.joined_at: float | None = None  # first assignment
        self._faults = 0  # transient faults retried so far (a failed poll is not idleness)
        self._drain = DrainWatch(config.drain_wait_s)
        self._deferring = False  # the last batch left records for later (not idle)
        self._stop = False
        self._membership = MembershipWatch(config.recreate_after_sessions)
        # Reconnect within a second or two of a broker coming back (kafka-python's default
        # backoff grows to 30 s, and the idle clock runs again as soon as the group is stable).
        common = {"bootstrap_servers": config.bootstrap, "client_id": config.client_id,
                  "reconnect_backoff_max_ms": 2000}
        self.consumer = KafkaConsumer(
            group_id=config.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",  # never act on an aborted transaction's records
            max_poll_records=config.batch_size, session_timeout_ms=config.session_timeout_ms,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024, **common)
        self.producer = KafkaProducer(acks="all", retries=5, linger_ms=5,
                                      max_request_size=4 * 1024 * 1024, **common)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> ConsumerSummary:
        """Consume until stopped (signal, ``until_idle`` or ``max_messages``); return totals."""
        saved_handlers = self._install_signal_handlers()
        self.consumer.subscribe([self.config.topic], listener=_SeekToStoredOffsets(self))
        freeze_start_up()
        started = time.monotonic()
        last_activity: float | None = None
        first_record: float | None = None
        cpu_first = cpu_last = 0.0  # process CPU time at the first record and last activity
        quiet_since: float | None = None  # start of the current idle stretch
        try:
            while not self._stop and not self._quota_reached():
                faults_before = self._faults
                polled_at = time.monotonic()
                records = self._poll()
                now = time.monotonic()
                if self.metrics is not None:
                    self._observe_lag(now)
                if not records:
                    member = in_group(self.consumer, self.joined_at is not None)
                    self._check_membership(member, now)
                    # Idle means: a member of a stable group, its coordinator reachable, and
                    # polls that work, yet no events. Waiting for a rebalance, a failed poll or
                    # an unreachable broker restarts the idle clock instead of running it.
                    if self._faults != faults_before or not member or self._deferring:
                        quiet_since = None
                        continue
                    quiet_since = quiet_since or now
                    idle = self.config.until_idle
                    if idle is not None and now - quiet_since >= idle:
                        left = self._drain.check(self.consumer, self.engine, self.config.group_id,
                                                 self.config.topic, self._topic_id, now)
                        if left is not None:  # drained ([]), or gave up with events left
                            self.summary.left = left
                            break
                    continue
                if first_record is None:
                    first_record, cpu_first = now, time.process_time()
                self._membership.reset()
                before_batch = getattr(self.pipeline, "before_batch", None)
                if before_batch is not None:  # a batch boundary: e.g. the scorer's hot reload
                    before_batch()
                self._handle(records)
                self._drain.reset()
                last_activity = quiet_since = time.monotonic()
                cpu_last = time.process_time()
                if self.metrics is not None:
                    self.metrics.batch_done(last_activity - polled_at)
        finally:
            self._close()
            for sig, previous in saved_handlers.items():
                signal.signal(sig, previous)
        s = self.summary
        s.seconds = time.monotonic() - started
        s.busy_seconds = (last_activity - first_record) if first_record and last_activity else 0.0
        s.rate = s.consumed / s.busy_seconds if s.busy_seconds else 0.0
        s.busy_cpu_seconds = max(0.0, cpu_last - cpu_first)
        return s

    def _check_membership(self, member: bool, now: float) -> None:
        """Replace the KafkaConsumer by a new one in the same group once it has been out of
        its group (``member``: in it now) too long while polling (:mod:`stream.membership`)."""
        out = self._membership.overdue(self.consumer, member, now)
        if out is None:
            return
        log.warning("consumer of %s out of group %s for %.0f s (no coordinator or no "
                    "assignment): closing it and joining again with a new one",
                    self.config.topic, self.config.group_id, out)
        try:
            new = replacement(self.consumer)
        except KafkaError as exc:
            log.warning("cannot make a new consumer (%s); trying again later", first_line(exc))
            self._membership.reset(now)
            return
        _SeekToStoredOffsets(self).on_partitions_revoked(list(self.consumer.assignment()))
        retire(self.consumer)
        self.consumer = new
        self.consumer.subscribe([self.config.topic], listener=_SeekToStoredOffsets(self))
        self._membership.reset()
        self.summary.recreated += 1
        if self.metrics is not None:
            self.metrics.recreated()

    def _observe_lag(self, now: float) -> None:
        """Export each assigned partition's lag (end offset − committed next offset), at most
        every ``LAG_REFRESH_S``. The end offset is the high watermark kafka-python keeps from
        fetch responses (no request of its own); a partition not fetched yet is skipped."""
        if self.metrics is None or now - self._lag_at < LAG_REFRESH_S:
            return
        self._lag_at = now
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is not None:
                done = self.stored.get((tp.topic, tp.partition)) or 0  # none stored: from 0
                self.metrics.set_lag(tp.topic, tp.partition, max(0, end - done))

    def _poll(self) -> list[Any]:
        limit = self.config.batch_size
        if self.config.max_messages is not None:
            limit = min(limit, self.config.max_messages - self.summary.consumed)
        try:
            polled = self._retry("poll", lambda: self.consumer.poll(
                timeout_ms=self.config.poll_timeout_ms, max_records=limit))
        except PermanentFault as exc:
            raise FraudstreamError(f"cannot consume {self.config.topic}: {exc}") from exc
        return [r for batch in polled.values() for r in batch]

    def _handle(self, records: Sequence[Any]) -> None:
        """Apply a batch; on a permanent fault, split it until the culprit is isolated."""
        try:
            self._apply(records)
        except PermanentFault as fault:
            if len(records) == 1:
                self._quarantine(records[0], str(fault))
                return
            log.warning("batch of %d hit a permanent fault (%s); isolating it", len(records),
                        fault)
            half = len(records) // 2
            self._handle(records[:half])
            self._handle(records[half:])

    def _apply(self, records: Sequence[Any]) -> None:
        try:
            effects = self.pipeline.process(records)
        except Exception as exc:  # noqa: BLE001 - a bug or unforeseen input: isolate it
            raise PermanentFault("processing", exc) from exc
        messages = list(effects.publish)
        messages += [dead_letter_message(d, self.config.dlq_topic) for d in effects.dead]
        self._publish(messages)
        deferred = effects.deferred
        if deferred:
            records = [r for r in records if r.offset < deferred.get((r.topic, r.partition),
                                                                     r.offset + 1)]
        self._deferring = bool(deferred)
        if self._commit(records, effects.write):
            self._defer(deferred, bool(records))
            s = self.summary
            s.consumed += len(records)
            s.dlq += len(effects.dead)
            s.stats.update(effects.stats)
            if self.metrics is not None:
                self.metrics.committed(records, effects)

    def _quarantine(self, record: Any, reason: str) -> None:
        """Dead-letter one record by reference and move past it, with no other effect."""
        log.error("dead-lettering %s/%d/%d: %s", record.topic, record.partition, record.offset,
                  reason, extra={"topic": record.topic, "partition": record.partition,
                                 "offset": record.offset, "reason": reason})
        letter = dead_letter_message(DeadLetter(record, f"permanent fault: {reason}"),
                                     self.config.dlq_topic, by_reference=True)
        try:
            self._publish([letter])
        except PermanentFault as exc:
            raise FraudstreamError(f"cannot dead-letter {record.topic}/{record.partition}/"
                                   f"{record.offset} ({exc}); stopping") from exc
        if self._commit([record], None):
            self.summary.consumed += 1
            self.summary.dlq += 1
            self.summary.isolated += 1
            if self.metrics is not None:
                self.metrics.quarantined(record)

    def _defer(self, deferred: Mapping[offsets.TP, int], progressed: bool) -> None:
        """Seek deferred partitions back to their first unprocessed offset (re-read on a later
        poll, after the others moved); wait :data:`DEFER_PAUSE_S` if nothing moved at all."""
        for (topic, partition), offset in deferred.items():
            tp = TopicPartition(topic, partition)
            if tp in self.consumer.assignment():
                self.consumer.seek(tp, offset)
        if deferred and not progressed:
            time.sleep(DEFER_PAUSE_S)

    # -- edges ---------------------------------------------------------------------------
    def _publish(self, messages: Sequence[Outgoing]) -> None:
        """Send ``messages`` and wait until the broker has confirmed every one."""
        if not messages:
            return

        def send_all() -> None:
            futures = [self.producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
                       for m in messages]
            self.producer.flush()
            for f in futures:
                f.get(timeout=30)

        self._retry("publish", send_all)

    def _commit(self, records: Sequence[Any], write: Callable[[Connection], None] | None) -> bool:
        """Commit ``write`` and the records' next offsets atomically; False if fenced off."""
        next_offsets: dict[offsets.TP, int] = {}
        for r in records:
            next_offsets[(r.topic, r.partition)] = r.offset + 1
        expected = {tp: self.stored.get(tp) for tp in next_offsets}

        def commit() -> None:
            try:
                with self.engine.begin() as conn:
                    offsets.advance(conn, self.config.group_id, expected, next_offsets,
                                    self.topic_ids)
                    if write is not None:
                        write(conn)
            except IntegrityError as exc:
                if "consumer_offsets" in str(exc):  # a concurrent first insert of our row
                    raise offsets.OffsetConflict(first_line(exc)) from exc
                raise

        try:
            self._retry("database commit", commit)
        except offsets.OffsetConflict as exc:
            log.warning("batch dropped, another member committed first (%s); re-seeking", exc)
            self.summary.conflicts += 1
            self.resync(list(self.consumer.assignment()))
            return False
        except offsets.BatchSuperseded as exc:
            log.warning("batch dropped uncommitted, %s; re-seeking", exc)
            self.summary.superseded += 1
            self.resync(list(self.consumer.assignment()))
            return False
        self.stored.update(next_offsets)
        offsets.commit_to_kafka(self.consumer, next_offsets)
        return True

    def resync(self, partitions: Sequence[TopicPartition]) -> None:
        """Seek ``partitions`` to the offsets stored in the database (start if none, or if the
        topic was recreated since those offsets were stored)."""
        stored = self._retry("read stored offsets", lambda: offsets.load(
            self.engine, self.config.group_id, [(tp.topic, tp.partition) for tp in partitions]))
        fresh = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            current_id = self._topic_id(tp.topic)
            row = stored.get(key)
            self.stored[key] = row.next_offset if row else None
            if row is None:
                fresh.append(tp)
            elif row.topic_id and current_id and row.topic_id != current_id:
                log.warning("topic %s was recreated (id %s, stored offsets were for %s): "
                            "reading partition %d from its beginning instead of offset %d",
                            tp.topic, current_id, row.topic_id, tp.partition, row.next_offset)
                self.summary.topic_resets += 1
                fresh.append(tp)
            else:
                self.consumer.seek(tp, row.next_offset)
        if fresh:
            self.consumer.seek_to_beginning(*fresh)
        log.info("assigned %s; stored offsets %s",
                 sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions),
                 {f"{t}[{p}]": s.next_offset for (t, p), s in stored.items()})

    def _topic_id(self, topic: str) -> str | None:
        """Kafka's id of ``topic`` as this client last saw it in metadata (None if unknown)."""
        if topic not in self.topic_ids or self.topic_ids[topic] is None:
            found = self.consumer._client.cluster.topic_id(topic)  # noqa: SLF001
            self.topic_ids[topic] = str(found) if found else None
        return self.topic_ids[topic]

    def _retry(self, what: str, action: Callable[[], T]) -> T:
        """Run ``action``; retry transient faults with backoff; raise :class:`PermanentFault`
        for the rest (offset conflicts and fraudstream errors pass through)."""
        delay, deadline = 0.5, time.monotonic() + self.config.retry_limit_s
        while True:
            try:
                return action()
            except (offsets.OffsetConflict, FraudstreamError):
                raise
            except (DBAPIError, KafkaError, OSError) as exc:
                if not is_transient(exc):
                    raise PermanentFault(what, exc) from exc
                if time.monotonic() > deadline or (self._stop and delay > 4):
                    raise FraudstreamError(
                        f"{what} failed, giving up (nothing was committed for this batch; it is "
                        f"re-read on restart): {first_line(exc)}") from exc
                self._faults += 1
                if self.metrics is not None:
                    self.metrics.retried(what)
                log.warning("%s failed (%s); retrying in %.1fs", what, first_line(exc), delay,
                            extra={"retry": what, "delay_seconds": delay})
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def request_stop(self) -> None:
        """Finish the current batch, commit, and return from :meth:`run`."""
        self._stop = True

    def _quota_reached(self) -> bool:
        limit = self.config.max_messages
        return limit is not None and self.summary.consumed >= limit

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGTERM/SIGINT finish the current batch; returns the handlers to restore after."""
        def request_stop(signum: int, _frame: Any) -> None:
            log.info("signal %s: finishing the current batch, then exiting", signum)
            self._stop = True

        if threading.current_thread() is not threading.main_thread():
            return {}  # embedded use (tests, notebooks): the caller stops us via request_stop()
        return {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def _close(self) -> None:
        try:
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
        except KafkaError as exc:  # everything that mattered was confirmed before its commit
            log.debug("producer close: %s", exc)
        finally:
            self.consumer.close(autocommit=False)
