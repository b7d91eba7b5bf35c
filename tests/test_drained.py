"""``--until-idle`` means drained: idle AND every partition of the topic committed in the store up
to its end offset. Pure rules first, then the real ``labels consume`` command on a real broker
beside a group member that holds partitions and never commits (as a killed scorer does until its
session expires)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import func, select

from store.db import connect
from store.tables import consumer_offsets, labels
from stream.drained import DrainWatch, Left, describe, left_over
from tests.test_labels import label_event

PER_PARTITION = 30
ROOT = Path(__file__).resolve().parent.parent


def test_left_over_counts_from_the_store_or_this_members_position() -> None:
    begin, end = {0: 0, 1: 5, 2: 0}, {0: 10, 1: 12, 2: 7}
    left = left_over("t", begin, end, stored={0: 10}, positions={2: 7})
    assert left == [Left("t", 1, 5, 12)]  # nothing stored: from its beginning (5)
    assert left[0].events == 7
    assert describe(left) == "t[1]: 7 events left (committed 5 of 12)"
    assert left_over("t", begin, end, stored={0: 10, 1: 12}, positions={2: 7}) == []


def test_drain_watch_waits_while_something_moves_and_gives_up_when_nothing_does() -> None:
    watch = DrainWatch(wait_s=10)
    assert watch.should_stop([], now=0.0)  # drained
    stuck = [Left("t", 1, 5, 12)]
    assert not watch.should_stop(stuck, now=0.0)
    assert not watch.should_stop(stuck, now=9.0)
    assert not watch.should_stop([Left("t", 1, 8, 12)], now=9.5)  # another member committed
    assert not watch.should_stop([Left("t", 1, 8, 12)], now=19.0)
    assert watch.should_stop([Left("t", 1, 8, 12)], now=19.5)


class StaleMember:
    """A member of ``group`` that keeps its partitions (it polls, so it stays in the group and
    takes part in rebalances) and never commits anything to the store."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                      enable_auto_commit=False, auto_offset_reset="latest")
        self._stop = threading.Event()
        deadline = time.monotonic() + 180  # generous: a loaded machine joins slowly
        while not self.consumer.assignment():  # joined: it owns the partitions
            assert time.monotonic() < deadline, "the stale member never joined"
            self.consumer.poll(timeout_ms=200)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(timeout_ms=200)

    def leave(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.consumer.close()


def consume(bootstrap: str, topic: str, group: str, db: str, drain_wait: float
            ) -> subprocess.Popen[str]:
    env = {**os.environ, "FRAUDSTREAM_DB_URL": db, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.Popen(
        [sys.executable, "-m", "fraudstream_cli", "labels", "consume", "--topic", topic,
         "--group-id", group, "--dlq-topic", f"{topic}.dlq", "--until-idle", "1",
         "--drain-wait", str(drain_wait), "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def committed(engine, group: str) -> dict[int, int]:
    c = consumer_offsets.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.partition, c.next_offset).where(c.group_id == group)).all()
    return {int(p): int(o) for p, o in rows}


@pytest.mark.kafka
def test_until_idle_waits_for_the_partitions_others_hold_and_says_what_is_left(
        kafka_bootstrap, new_topic, tmp_path) -> None:
    topic = new_topic(kafka_bootstrap, 3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for partition in range(3):
        for i in range(PER_PARTITION):
            event = label_event(f"p{partition}-{i}", "fraud", 1.0)
            producer.send(topic, key=event["transaction_id"].encode(),
                          value=json.dumps(event).encode(), partition=partition)
    producer.flush()
    producer.close()
    db = f"sqlite:///{tmp_path / 'labels.db'}"
    engine = connect(db)

    # 1. A member that never commits keeps some partitions: the sink gives up after
    #    --drain-wait, exits 3 and names every partition with events left.
    stale = StaleMember(kafka_bootstrap, topic, "held")
    try:
        proc = consume(kafka_bootstrap, topic, "held", db, drain_wait=3)
        out, err = proc.communicate(timeout=180)
    finally:
        stale.leave()
    assert proc.returncode == 3, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    left = {item["partition"]: item for item in summary["left"]}
    done = committed(engine, "held")
    assert left and done, (summary, done)  # the rebalance split the partitions
    assert set(left) | set(done) == {0, 1, 2} and not set(left) & set(done)
    assert all(o == PER_PARTITION for o in done.values())
    assert all(x["done"] == 0 and x["end"] == PER_PARTITION for x in left.values())
    message = err.strip().splitlines()[-1]
    for partition in left:
        assert f"{topic}[{partition}]: {PER_PARTITION} events left (committed 0 of " \
               f"{PER_PARTITION})" in message, message
    assert "Traceback" not in err
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(labels)).scalar() \
            == PER_PARTITION * len(done)

    # 2. The member leaves while the sink is idle with events left: the sink waits, is handed
    #    the partitions, drains them all and exits 0 (it used to stop at the first idle second).
    stale = StaleMember(kafka_bootstrap, topic, "handed-over")
    try:
        proc = consume(kafka_bootstrap, topic, "handed-over", db, drain_wait=120)
        deadline = time.monotonic() + 120
        while not committed(engine, "handed-over"):  # its own partitions are done
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        time.sleep(3)  # well past --until-idle 1
        assert proc.poll() is None, "stopped while another member still held events"
    finally:
        stale.leave()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["left"] == []
    assert committed(engine, "handed-over") == {0: PER_PARTITION, 1: PER_PARTITION,
                                                2: PER_PARTITION}
    engine.dispose()
