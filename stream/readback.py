"""Reading a topic's records back (the log of events), outside any consumer group.

Used by ``fraudstream drift`` (the last N events the scorer saw) and ``fraudstream retrain``
(every event still held, windowed by event time afterwards). Reads are ``read_committed`` and
commit nothing: reading back never moves a consumer group.
"""

from __future__ import annotations

import math
import time
from typing import Any

from schemas.errors import FraudstreamError


def read_back(
    bootstrap: str,
    topic: str,
    last: int | None = None,
    *,
    timeout_s: float = 60.0,
    client_id: str = "fraudstream-readback",
) -> list[Any]:
    """The records of ``topic`` (kafka-python ``ConsumerRecord``s) sorted by record timestamp:
    all it holds (``last=None``), or the last ``last``, split over its partitions in proportion
    to what each holds. FraudstreamError when the topic does not exist or the read times out."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id=client_id,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise FraudstreamError(f"topic '{topic}' does not exist (or has no partitions)")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begin, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        held = {tp: end[tp] - begin[tp] for tp in tps}
        total = sum(held.values())
        start = {}
        for tp in tps:
            take = held[tp] if last is None or total <= last else math.ceil(last * held[tp] / total)
            start[tp] = end[tp] - min(take, held[tp])
            consumer.seek(tp, start[tp])
        records: list[Any] = []
        pending = {tp for tp in tps if start[tp] < end[tp]}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=500, max_records=10_000).items():
                records.extend(r for r in batch if r.offset < end[tp])
            pending = {tp for tp in pending if consumer.position(tp) < end[tp]}
        if pending:
            raise FraudstreamError(f"timed out reading back {topic} ({len(records)} events read)")
    finally:
        consumer.close()
    records.sort(key=lambda r: r.timestamp)
    return records[-last:] if last is not None and len(records) > last else records
