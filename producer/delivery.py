"""Delivery accounting for the replay: every send confirmed or counted as failed, with the
earliest data row not confirmed (the ``--skip`` to resume from), and never a Kafka traceback."""

from __future__ import annotations

import collections
import time
from typing import Any

CLOSE_TIMEOUT_S = 10.0
_GRACE_S = 5.0  # seconds to wait for outcomes beyond the delivery timeout


class Sender:
    """Sends events and confirms each future; counts acknowledged and failed sends, and the
    earliest data row (1-based, as counted by ``--skip``) with an event not confirmed.

    The first send the client refuses (e.g. its buffer stayed full for ``max_block_ms``) sets
    ``stopped``: later events are counted as failed without being handed to the client. Nothing
    here raises a Kafka error.
    """

    def __init__(self, producer: Any, delivery_timeout_s: float,
                 headers: list[tuple[str, bytes]] | None = None) -> None:
        from kafka.errors import KafkaError

        self._kafka_error = KafkaError  # (imported once: send() is on the hot path)
        self.producer = producer
        self.headers = headers  # on every event (schemas.provenance: the data's provenance)
        self.delivery_timeout_s = delivery_timeout_s
        self.clean = True  # False once finish() gave up on unresolved futures
        self.pending: collections.deque[tuple[Any, int, bool]] = collections.deque()
        self.acked = self.failed = self.labels_acked = self.labels_failed = 0
        self.first_error: str | None = None
        self.first_unconfirmed: int | None = None
        self.stopped = False

    def _fail(self, row: int, label: bool, error: object) -> None:
        self.failed += 1
        self.labels_failed += label
        if self.first_unconfirmed is None or row < self.first_unconfirmed:
            self.first_unconfirmed = row
        if self.first_error is None and error is not None:
            self.first_error = repr(error) if isinstance(error, BaseException) else str(error)

    def send(self, topic: str, key: bytes, value: bytes, row: int, label: bool = False) -> None:
        """Queue one event of data row ``row``; counted as failed if the client refuses it (which
        stops further sending) or sending has stopped."""
        if self.stopped:
            self._fail(row, label, None)
            return
        try:
            self.pending.append((self.producer.send(topic, value=value, key=key,
                                                    headers=self.headers), row, label))
        except self._kafka_error as exc:
            self.stopped = True
            self._fail(row, label, exc)

    def reap(self) -> None:
        """Account for the futures that have completed, oldest first."""
        pending = self.pending
        while pending and pending[0][0].is_done:
            future, row, label = pending.popleft()
            if future.succeeded():
                if label:
                    self.labels_acked += 1
                else:
                    self.acked += 1
            else:
                self._fail(row, label, future.exception)

    def finish(self) -> None:
        """Wait for every outstanding future, at most ``delivery_timeout_s`` + a grace period
        from now (the last send), then count the unresolved ones as failed. Our own deadline,
        as kafka-python's idempotent producer stops expiring batches once it has lost its
        producer id to an expiry while the broker is down. Never raises a Kafka error."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + self.delivery_timeout_s + _GRACE_S
        while True:
            self.reap()
            remaining = deadline - time.monotonic()
            if not self.pending or remaining <= 0:
                break
            try:
                self.producer.flush(timeout=min(remaining, 1.0))
            except KafkaError:  # not done yet (or failed: reap() records why)
                time.sleep(0.05)
        waited = self.delivery_timeout_s + _GRACE_S
        for _future, row, label in self.pending:
            self._fail(row, label, f"not acknowledged within {waited:.0f} s")
        self.clean = not self.pending
        self.pending.clear()

    def close(self) -> None:
        """Close the producer; at once and forcibly if events are still unresolved (never
        raises a Kafka error: unconfirmed events are already counted by :meth:`finish`)."""
        from kafka.errors import KafkaError

        try:
            self.producer.close(timeout=CLOSE_TIMEOUT_S if self.clean else 0)
        except (KafkaError, OSError, ValueError):
            io_thread = getattr(self.producer, "_sender", None)  # close() raised before stopping it
            if io_thread is not None and hasattr(io_thread, "force_close"):
                io_thread.force_close()
