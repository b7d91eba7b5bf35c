"""Faults the scorer must survive (issue 13), each on a real broker and real databases: a broker
crash, duplicates, poison messages, boolean/float labels, a recreated topic, a vanished SQLite
file, a non-production model in the production group, aborted transactions, bad limits.

Data faults end in EXACT tables (the streamed result equals an offline batch scoring); refusals
end in one clear line and exit code 2."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from sqlalchemy import Column, Connection, MetaData, String, Table, func, select

from producer.broker import LocalBroker, free_port
from producer.replay import source_tag, transaction_id
from producer.topics import ensure_topics
from scorer.cli import PRODUCTION_GROUP
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
from store.tables import decisions, labels
from stream import BatchEffects, ConsumerConfig, SqlConsumer
from tests.scoring_helpers import (
    Expected,
    committed_offsets,
    finish,
    kill,
    offline_reference,
    replay_all,
    scorer_process,
    setup_model,
    streamed_result,
)
from trainer.pipeline import train
from trainer.synth import write_csv

#: A valid transaction event (its id and fields are overridden per test).
GOOD = {"schema_version": 1, "transaction_id": "good", "time_s": 10.0,
        **{f"v{k}": 0.05 * k for k in range(1, 29)}, "amount": 12.5, "is_fraud": 0}


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_csv(tmp_path_factory.mktemp("faults") / "faults.csv", 2000,
                         fraud_rate=0.03, seed=17))


# -- helpers ---------------------------------------------------------------------------------
def run_in_process(bootstrap: str, topic: str, engine: Any, home: Path, group: str = "g",
                   **kw: Any) -> Any:
    config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id=group,
                         until_idle=kw.pop("until_idle", 4), alerts_topic=f"{topic}.alerts",
                         dlq_topic=f"{topic}.dlq", **kw)
    ensure_topics(bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    return Scorer(config, engine, load_model(engine, home=home)).run()


def send(bootstrap: str, topic: str, values: Sequence[bytes], *, key: bytes | None = None,
         ) -> list[str]:
    """Send ``values`` (round-robin over 3 partitions); return their "topic/partition/offset"."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             max_request_size=2 * 1024 * 1024)
    futures = [producer.send(topic, key=key or f"k{i}".encode(), value=v, partition=i % 3)
               for i, v in enumerate(values)]
    producer.flush(timeout=60)
    where = [f"{topic}/{m.partition}/{m.offset}" for m in (f.get(timeout=60) for f in futures)]
    producer.close()
    return where


def read_all(bootstrap: str, topic: str, timeout_ms: int = 6000) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=timeout_ms, fetch_max_bytes=8 * 1024 * 1024)
    try:
        return list(consumer)
    finally:
        consumer.close()


def header(message: Any, name: str) -> bytes | None:
    return dict(message.headers).get(name)


def decided_ids(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(decisions.c.transaction_id)).scalars())


def combined(a: Expected, b: Expected) -> Expected:
    return Expected(tp=a.tp + b.tp, fp=a.fp + b.fp, tn=a.tn + b.tn, fn=a.fn + b.fn,
                    alert_ids=a.alert_ids | b.alert_ids)


def event(tid: str, **changes: Any) -> bytes:
    return json.dumps({**GOOD, "transaction_id": tid, **changes}).encode()


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
@pytest.mark.kafka
def test_every_event_delivered_twice_is_counted_once(kafka_bootstrap, new_topic, small_csv,
                                                     db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    assert replay_all(small_csv, kafka_bootstrap, topic) == ids  # the same events again
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=300)
    assert summary.consumed == 2 * len(ids) and summary.dlq == 0
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
    assert sorted(decided_ids(engine)) == sorted(ids)  # exactly one decision per transaction
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(labels)).scalar() == len(ids)
    alert_keys = [m.key.decode() for m in read_all(kafka_bootstrap, f"{topic}.alerts")]
    assert set(alert_keys) == set(streamed_result(engine).alert_ids)


# -- 3. poison messages ------------------------------------------------------------------------
@pytest.mark.kafka
def test_nul_in_transaction_id_is_dead_lettered_not_stuck(kafka_bootstrap, new_topic,
                                                          small_csv, db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    escaped = [event("nul\u0000id"), event("\u0000"), event("a\u0000" * 20)]
    raw_nul = json.dumps({**GOOD, "transaction_id": "RAW"}).encode().replace(b"RAW", b"r\x00w")
    poison = send(kafka_bootstrap, topic, [*escaped, raw_nul])  # at the head of the partitions
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=500)
    assert summary.consumed == len(ids) + len(poison)
    assert summary.dlq == len(poison)
    assert committed_offsets(engine, "g") == len(ids) + len(poison)  # moved past them
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
    assert not [i for i in decided_ids(engine) if "\x00" in i]
    letters = {header(m, "fraudstream.source").decode(): m
               for m in read_all(kafka_bootstrap, f"{topic}.dlq")}
    assert set(letters) == set(poison)
    for where in poison[: len(escaped)]:
        assert "transaction_id" in header(letters[where], "fraudstream.error").decode()
    assert header(letters[poison[-1]], "fraudstream.error").decode().strip()
    assert sorted(m.value for m in letters.values()) == sorted([*escaped, raw_nul])


@pytest.mark.kafka
def test_message_near_the_broker_limit_is_dead_lettered_by_reference(
        kafka_bootstrap, new_topic, small_csv, db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    size = 1_000_000
    body = event("huge", padding="")
    body = event("huge", padding="p" * (size - len(body)))
    assert len(body) == size
    (where,) = send(kafka_bootstrap, topic, [body])
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=500)
    assert summary.consumed == len(ids) + 1 and summary.dlq == 1
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
    (letter,) = read_all(kafka_bootstrap, f"{topic}.dlq")
    assert header(letter, "fraudstream.body") == b"reference"
    assert header(letter, "fraudstream.source").decode() == where
    assert header(letter, "fraudstream.error").decode().startswith("oversized")
    assert json.loads(letter.value) == {"reference": where, "bytes": size,
                                        "sha256": hashlib.sha256(body).hexdigest()}
    assert len(letter.value) < 200


POISON_KEY = b"poison"
effects = Table("fault_effects", MetaData(), Column("id", String(64), primary_key=True))


@dataclass(frozen=True)
class PoisonedPipeline:
    """A real pipeline whose SQL write inserts one row per record: a 300-character id (which
    PostgreSQL refuses, permanently, for a VARCHAR(64)) for records keyed ``poison``."""

    def process(self, records: Sequence[Any]) -> BatchEffects:
        rows = [{"id": "x" * 300 if r.key == POISON_KEY else f"{r.partition}-{r.offset}"}
                for r in records]
        return BatchEffects(write=partial(self.write, rows=rows), stats={"rows": len(rows)})

    @staticmethod
    def write(conn: Connection, rows: list[dict[str, str]]) -> None:
        conn.execute(effects.insert(), rows)


@pytest.mark.kafka
@pytest.mark.postgres
def test_permanent_database_fault_is_isolated_to_its_message(kafka_bootstrap, new_topic,
                                                              home):
    from store.db import connect
    from tests.conftest import postgres_url, reset_postgres

    url = postgres_url()
    reset_postgres(url)
    engine = connect(url)
    effects.create(engine)
    topic = new_topic(kafka_bootstrap)
    n, poisoned = 600, {37, 38, 211, 212, 213, 599}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=10)
    futures = {i: producer.send(topic, key=POISON_KEY if i in poisoned else b"ok",
                                value=f"payload-{i}".encode(), partition=i % 3)
               for i in range(n)}
    producer.flush(timeout=60)
    where = {i: f.get(timeout=60) for i, f in futures.items()}
    producer.close()
    dlq_topic = f"{topic}.dlq"
    ensure_topics(kafka_bootstrap, {dlq_topic: 1})
    config = ConsumerConfig(bootstrap=kafka_bootstrap, topic=topic, group_id="isolate",
                            dlq_topic=dlq_topic, batch_size=64, until_idle=4)
    summary = SqlConsumer(config, engine, PoisonedPipeline()).run()

    assert summary.isolated == len(poisoned) == summary.dlq
    assert summary.consumed == n
    assert summary.stats["rows"] == n - len(poisoned)
    with engine.connect() as conn:
        stored = set(conn.execute(select(effects.c.id)).scalars())
    assert stored == {f"{m.partition}-{m.offset}" for i, m in where.items() if i not in poisoned}
    assert committed_offsets(engine, "isolate") == n  # offsets reached the end
    letters = read_all(kafka_bootstrap, dlq_topic)
    expected = {f"{topic}/{where[i].partition}/{where[i].offset}" for i in poisoned}
    assert {header(m, "fraudstream.source").decode() for m in letters} == expected
    for m in letters:
        assert header(m, "fraudstream.body") == b"reference"
        reference = json.loads(m.value)
        assert reference["reference"] == header(m, "fraudstream.source").decode()
        reason = header(m, "fraudstream.error").decode()
        assert reason.startswith("permanent fault: database commit:"), reason
        assert "StringDataRightTruncation" in reason or "too long" in reason, reason
    engine.dispose()


# -- 4. booleans and floats as labels -----------------------------------------------------------
@pytest.mark.kafka
def test_boolean_and_float_labels_are_dead_lettered(kafka_bootstrap, new_topic, small_csv,
                                                    db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    bad = {"bool-true": True, "bool-false": False, "float-one": 1.0, "float-zero": 0.0,
           "string-one": "1"}
    values = [event(f"label-{name}", is_fraud=v) for name, v in bad.items()]
    poison = send(kafka_bootstrap, topic, values)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=400)
    assert summary.dlq == len(bad) and summary.consumed == len(ids) + len(bad)
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
    assert not [i for i in decided_ids(engine) if i.startswith("label-")]
    letters = read_all(kafka_bootstrap, f"{topic}.dlq")
    assert {header(m, "fraudstream.source").decode() for m in letters} == set(poison)
    assert all(header(m, "fraudstream.error").decode().startswith("is_fraud") for m in letters)


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


# -- 6. the SQLite file deleted mid-run ---------------------------------------------------------
@pytest.mark.kafka
def test_sqlite_file_deleted_mid_run_stops_with_one_line(kafka_bootstrap, new_topic, tmp_path,
                                                         home):
    csv = str(write_csv(tmp_path / "vanish.csv", 20_000, fraud_rate=0.01, seed=61))
    path = tmp_path / "vanish.db"
    db_url = f"sqlite:///{path}"
    engine = setup_model(csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    replay_all(csv, kafka_bootstrap, topic)
    proc = scorer_process(kafka_bootstrap, topic, "vanish", db_url, home, "--batch-size", "20",
                          "--until-idle", "30")
    try:
        deadline = time.monotonic() + 180
        while committed_offsets(engine, "vanish") < 200:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the scorer made no progress"
            time.sleep(0.05)
        engine.dispose()
        path.unlink()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert proc.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("fraudstream score: error: database file "), err[-3000:]
    assert str(path) in last and "deleted" in last
    assert "Traceback" not in err


# -- 7. a model other than production in the production group ----------------------------------
@pytest.mark.kafka
def test_candidate_model_may_not_join_the_production_group(kafka_bootstrap, new_topic,
                                                           small_csv, tmp_path, home):
    db_url = f"sqlite:///{tmp_path / 'versions.db'}"
    engine = setup_model(small_csv, db_url, home)
    second = train(small_csv, epochs=2, seed=4, db=db_url, home=home)
    assert second["version"] == 2
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)

    refused = scorer_process(kafka_bootstrap, topic, PRODUCTION_GROUP, db_url, home,
                             "--model-version", "2", "--until-idle", "5")
    out, err = refused.communicate(timeout=180)
    assert refused.returncode == 2, err[-3000:]
    lines = [line for line in err.strip().splitlines() if line.startswith("fraudstream")]
    assert len(lines) == 1 and lines[0] == err.strip().splitlines()[-1]
    assert lines[0].startswith("fraudstream score: error: model 2 is not the production model")
    assert not decided_ids(engine)  # it did nothing

    summary = finish(scorer_process(kafka_bootstrap, topic, "other", db_url, home,
                                    "--model-version", "2", "--until-idle", "5"))
    assert summary["model_version"] == 2 and summary["consumed"] == len(ids)
    with engine.connect() as conn:
        versions = set(conn.execute(select(decisions.c.model_version)).scalars())
    assert versions == {2} and sorted(decided_ids(engine)) == sorted(ids)


# -- 8. aborted transactions --------------------------------------------------------------------
def events_of(csv: str, bootstrap: str) -> dict[str, bytes]:
    """The transaction events the replay makes of ``csv``, by transaction id."""
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    ids = replay_all(csv, bootstrap, scratch)
    found = {json.loads(m.value)["transaction_id"]: m.value for m in read_all(bootstrap, scratch)}
    assert set(found) == set(ids)
    return found


@pytest.mark.kafka
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


# -- 9. bad limits ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "0"])
def test_max_messages_below_one_is_refused(value, home):
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", "score", "--max-messages",
                           value, "--bootstrap-servers", f"127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FRAUDSTREAM_HOME": str(home)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "fraudstream score: error: --max-messages must be >= 1"
    assert proc.stdout == ""

