"""Faults of the log under the scorer (issue 13), on a real broker and real databases: the broker
killed with SIGKILL while scoring and while idle, a topic deleted and recreated, and events of
aborted Kafka transactions. Each ends in EXACT tables (the streamed result equals an offline
batch scoring)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from sqlalchemy import select

from producer.broker import LocalBroker, free_port
from producer.replay import source_tag, transaction_id
from tests.scoring_helpers import (
    combined,
    committed_offsets,
    decided_ids,
    finish,
    kill,
    offline_reference,
    read_all,
    replay_all,
    run_in_process,
    scorer_process,
    setup_model,
    streamed_result,
)
from trainer.synth import write_csv


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_csv(tmp_path_factory.mktemp("log-faults") / "faults.csv", 2000,
                         fraud_rate=0.03, seed=17))



# -- 1. a broker crash while scoring -----------------------------------------------------------
UNTIL_IDLE = 20


def kill_broker(broker: LocalBroker) -> None:
    """kill -9 the broker's JVM and wait until it is gone."""
    pid = broker.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while broker.pid() is not None:
        time.sleep(0.1)


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_killed_while_scoring_and_while_idle_then_exact(tmp_path, home):
    """kill -9 the broker three times mid-scoring, then once while the scorer is idle for longer
    than --until-idle: the scorer rides every outage out, never counts one as idleness (it is
    still there to score what arrives after the last restart), and ends exact with rc 0."""
    if shutil.which("java") is None:
        pytest.skip("java not installed (a separate local broker is needed)")
    n = 30_000
    csv = str(write_csv(tmp_path / "crash.csv", n, fraud_rate=0.01, seed=51))
    late_csv = str(write_csv(tmp_path / "late.csv", 1000, fraud_rate=0.03, seed=52))
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    engine = setup_model(csv, db_url, home)
    data, port = tmp_path / "kafka", free_port()
    broker = LocalBroker(data, port=port)
    bootstrap = broker.up(timeout=120)
    proc = None
    try:
        topic = "crashing"
        ids = replay_all(csv, bootstrap, topic)
        proc = scorer_process(bootstrap, topic, "crash", db_url, home, "--batch-size", "200",
                              "--until-idle", str(UNTIL_IDLE))
        rng = random.Random(13)
        for _ in range(3):  # mid-stream, at random points
            target = committed_offsets(engine, "crash") + rng.randint(500, 4000)
            deadline = time.monotonic() + 300
            while committed_offsets(engine, "crash") < target:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the scorer made no progress"
                time.sleep(rng.uniform(0.02, 0.3))
            kill_broker(broker)
            time.sleep(rng.uniform(1, 6))
            assert proc.poll() is None, "the scorer died with the broker: " + (
                proc.communicate()[1][-3000:])
            broker = LocalBroker(data, port=port)
            broker.up(timeout=120)
            assert committed_offsets(engine, "crash") < n  # the kill came mid-stream
        deadline = time.monotonic() + 600
        while committed_offsets(engine, "crash") < n:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the scorer never caught up"
            time.sleep(0.2)
        # Now idle: an outage longer than --until-idle must not end the run.
        kill_broker(broker)
        time.sleep(UNTIL_IDLE + 10)
        assert proc.poll() is None, "an outage was taken for idleness: " + (
            proc.communicate()[1][-3000:])
        broker = LocalBroker(data, port=port)
        broker.up(timeout=120)
        late_ids = replay_all(late_csv, bootstrap, topic)
        summary = finish(proc, timeout=900)
        assert summary["consumed"] >= n + len(late_ids)
        assert committed_offsets(engine, "crash") == n + len(late_ids)
        assert streamed_result(engine) == combined(
            offline_reference(engine, csv, home, ids),
            offline_reference(engine, late_csv, home, late_ids))
        assert sorted(decided_ids(engine)) == sorted(ids + late_ids)
    finally:
        if proc is not None and proc.poll() is None:
            kill(proc)
        broker.down()


# -- 2. duplicates -----------------------------------------------------------------------------


# -- 5. a recreated topic -----------------------------------------------------------------------
def recreate(bootstrap: str, topic: str, partitions: int = 3, timeout: float = 120) -> None:
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + timeout
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} was never deleted"
            time.sleep(0.5)
        while True:
            try:
                admin.create_topics({topic: {"num_partitions": partitions,
                                             "replication_factor": 1}},
                                    wait_for_metadata=True)
                return
            except TopicAlreadyExistsError:  # deletion still in progress on the broker
                assert time.monotonic() < deadline, f"{topic} could not be recreated"
                time.sleep(0.5)
    finally:
        admin.close()


@pytest.mark.kafka
# One database (the stored topic id and offsets behave alike on both): .ci/run's time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_recreated_topic_is_read_from_its_beginning(kafka_bootstrap, new_topic, small_csv,
                                                    db_url, home, tmp_path):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    old_ids = replay_all(small_csv, kafka_bootstrap, topic)
    first = run_in_process(kafka_bootstrap, topic, engine, home, group="fresh", batch_size=500)
    assert first.consumed == len(old_ids) and first.topic_resets == 0
    old = offline_reference(engine, small_csv, home, old_ids)
    assert streamed_result(engine) == old
    with engine.connect() as conn:
        from store.tables import consumer_offsets

        stored_ids = set(conn.execute(select(consumer_offsets.c.topic_id)).scalars())
    assert len(stored_ids) == 1 and None not in stored_ids  # offsets carry the topic id

    recreate(kafka_bootstrap, topic)
    # More events than before: were the old offsets reused, the first ones would be skipped.
    new_csv = str(write_csv(tmp_path / "second.csv", 3000, fraud_rate=0.03, seed=71))
    new_ids = replay_all(new_csv, kafka_bootstrap, topic)
    proc = scorer_process(kafka_bootstrap, topic, "fresh", db_url, home, "--until-idle", "5",
                          "--batch-size", "500")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["topic_resets"] >= 1 and summary["consumed"] == len(new_ids)
    warnings = [line for line in err.splitlines() if "WARNING" in line and "recreated" in line]
    assert warnings and all(f"topic {topic} was recreated" in w for w in warnings), err[-3000:]
    assert set(new_ids) <= set(decided_ids(engine))
    assert len(decided_ids(engine)) == len(old_ids) + len(new_ids)
    assert streamed_result(engine) == combined(
        old, offline_reference(engine, new_csv, home, new_ids))
    assert committed_offsets(engine, "fresh") == len(new_ids)


# -- 8. aborted transactions --------------------------------------------------------------------
def events_of(csv: str, bootstrap: str) -> dict[str, bytes]:
    """The transaction events the replay makes of ``csv``, by transaction id."""
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    ids = replay_all(csv, bootstrap, scratch)
    found = {json.loads(m.value)["transaction_id"]: m.value for m in read_all(bootstrap, scratch)}
    assert set(found) == set(ids)
    return found


@pytest.mark.kafka
# One database (what is read is decided by the Kafka client): .ci/run's time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_events_of_aborted_transactions_are_not_scored(kafka_bootstrap, new_topic, tmp_path,
                                                       small_csv, db_url, home):
    engine = setup_model(small_csv, db_url, home)
    aborted_csv = str(write_csv(tmp_path / "aborted.csv", 400, fraud_rate=0.05, seed=81))
    kept_csv = str(write_csv(tmp_path / "kept.csv", 600, fraud_rate=0.05, seed=82))
    aborted, kept = events_of(aborted_csv, kafka_bootstrap), events_of(kept_csv, kafka_bootstrap)
    topic = new_topic(kafka_bootstrap)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             transactional_id=f"tx-{uuid.uuid4().hex[:8]}",
                             enable_idempotence=True)
    producer.init_transactions()
    half = len(aborted) // 2
    batches = [(list(aborted.items())[:half], False), (list(kept.items()), True),
               (list(aborted.items())[half:], False)]
    for items, commit in batches:
        producer.begin_transaction()
        for tid, value in items:
            producer.send(topic, key=tid.encode(), value=value)
        producer.flush(timeout=60)
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=250)
    assert summary.consumed == len(kept) and summary.dlq == 0
    assert sorted(decided_ids(engine)) == sorted(kept)
    kept_ids = [transaction_id(source_tag(kept_csv), line) for line in range(2, len(kept) + 2)]
    assert set(kept_ids) == set(kept)
    assert streamed_result(engine) == offline_reference(engine, kept_csv, home, kept_ids)
