"""The consumer skeleton's liveness (stream.membership) on a real broker and a real database: a
member kept out of its group longer than ``recreate_after_sessions`` session timeouts while it
polls replaces its KafkaConsumer by a new one in the same group, which resumes from the offsets
stored in SQL, so every record is written exactly once.

The condition here is real but not the kafka-python 3.0.12 hang itself (a member left in a
rebalance for good after a topic created after it subscribed, seen in about one try in five on
a fresh broker): the group's only broker is killed, so the member has no coordinator; the
replacement happens during the outage, and the new client joins when the broker is back."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from kafka import KafkaProducer
from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, select

from metrics import ConsumerMetrics
from producer.broker import LocalBroker, free_port
from producer.topics import ensure_topics
from store.db import connect
from stream import BatchEffects, ConsumerConfig, SqlConsumer
from tests.ci import missing
from tests.scoring_helpers import committed_offsets

effects = Table("liveness_effects", MetaData(), Column("partition", Integer),
                Column("offset", Integer))  # no key: a record written twice would show


@dataclass(frozen=True)
class RecordingPipeline:
    def process(self, records: Sequence[Any]) -> BatchEffects:
        rows = [{"partition": r.partition, "offset": r.offset} for r in records]
        return BatchEffects(write=partial(self.write, rows=rows))

    @staticmethod
    def write(conn: Connection, rows: list[dict[str, int]]) -> None:
        conn.execute(effects.insert(), rows)


def produce(bootstrap: str, topic: str, n: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    sent = [producer.send(topic, value=f"event-{i}".encode(), partition=i % 3)
            for i in range(n)]
    producer.flush(timeout=60)
    for future in sent:
        future.get(timeout=60)
    producer.close()


def wait_for(check, what: str, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.kafka
@pytest.mark.slow
def test_a_member_out_of_its_group_too_long_is_replaced_and_writes_everything_once(tmp_path):
    if shutil.which("java") is None:
        missing("java is not installed", "a broker of the test's own is killed and restarted")
    engine = connect(f"sqlite:///{tmp_path / 'liveness.db'}")
    effects.create(engine)
    data, port = tmp_path / "kafka", free_port()
    broker = LocalBroker(data, port=port)
    bootstrap = broker.up(timeout=120)
    metrics = ConsumerMetrics("liveness")
    consumer: SqlConsumer | None = None
    thread: threading.Thread | None = None
    try:
        topic = "liveness"
        ensure_topics(bootstrap, {topic: 3, f"{topic}.dlq": 1})
        produce(bootstrap, topic, 150)
        config = ConsumerConfig(bootstrap=bootstrap, topic=topic, group_id="live",
                                dlq_topic=f"{topic}.dlq", batch_size=40, session_timeout_ms=6000,
                                recreate_after_sessions=0.5)
        consumer = SqlConsumer(config, engine, RecordingPipeline(), metrics)
        summary: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: summary.update(run=consumer.run()),
                                  name="liveness-consumer")
        thread.start()
        wait_for(lambda: committed_offsets(engine, "live") == 150, "the first events")
        first_client = consumer.consumer

        pid = broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the group's coordinator is gone
        wait_for(lambda: consumer.summary.recreated >= 1, "no replacement during the outage", 60)
        broker.down()  # reaps the killed JVM
        broker = LocalBroker(data, port=port)
        assert broker.up(timeout=120) == bootstrap
        produce(bootstrap, topic, 150)
        wait_for(lambda: committed_offsets(engine, "live") == 300, "the events after the outage")
        consumer.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive()

        assert "run" in summary, "the consumer's run raised (see the thread's traceback)"
        run = summary["run"]
        assert consumer.consumer is not first_client and run.recreated >= 1
        assert run.consumed == 300 and run.dlq == 0
        with engine.connect() as conn:
            written = conn.execute(select(effects.c.partition, effects.c.offset)).all()
            per_partition = dict(conn.execute(select(effects.c.partition, func.count())
                                              .group_by(effects.c.partition)).all())
        assert len(written) == len(set(written)) == 300  # exactly once
        assert per_partition == {0: 100, 1: 100, 2: 100}
        assert metrics.registry.get_sample_value(
            "fraudstream_consumer_recreated_total", {"service": "liveness"}) == run.recreated
    finally:
        if consumer is not None and thread is not None and thread.is_alive():
            consumer.request_stop()
            thread.join(timeout=60)
        broker.down()
        engine.dispose()
