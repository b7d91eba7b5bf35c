"""Faults the scorer must survive (issue 13), each on a real broker and real databases:
duplicates, poison messages, boolean/float labels, a permanent database fault, a vanished SQLite
file, a non-production model in the production group, bad limits. (Faults of the log itself — a
broker crash, a recreated topic, aborted transactions — are in test_scorer_log_faults.py.)

Data faults end in EXACT tables (the streamed result equals an offline batch scoring); refusals
end in one clear line and exit code 2."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from kafka import KafkaProducer
from sqlalchemy import Column, Connection, MetaData, String, Table, func, select

from producer.broker import free_port
from producer.topics import ensure_topics
from scorer.cli import PRODUCTION_GROUP
from store.tables import decisions, labels
from stream import BatchEffects, ConsumerConfig, SqlConsumer
from tests.scoring_helpers import (
    committed_offsets,
    decided_ids,
    finish,
    kill,
    offline_reference,
    read_all,
    replay_all,
    run_in_process,
    scorer_process,
    send,
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
def header(message: Any, name: str) -> bytes | None:
    return dict(message.headers).get(name)


def event(tid: str, **changes: Any) -> bytes:
    return json.dumps({**GOOD, "transaction_id": tid, **changes}).encode()


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
# PostgreSQL only: a NUL is what PostgreSQL text refuses (SQLite stores it); .ci/run's time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
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
# One database (the refusal and the dead letter by reference are the broker's and the
# skeleton's; the database only moves the offsets): .ci/run's time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
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
# One database (refused while decoding, before any SQL): .ci/run's time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
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

