"""The scorer on a real Kafka broker and real databases: exact counts, crashes, two members,
malformed events. The reference is an offline batch scoring of the same rows."""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from producer.replay import replay, source_tag, transaction_id
from producer.topics import ensure_topics
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
from tests.scoring_helpers import (
    committed_offsets,
    finish,
    kill,
    offline_reference,
    replay_all,
    scorer_process,
    setup_model,
    streamed_result,
    wait_for_members,
)
from trainer.synth import write_csv

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return str(write_csv(tmp_path_factory.mktemp("d") / "small.csv", 6000, fraud_rate=0.02,
                         seed=11))


def run_in_process(bootstrap, topic, engine, home, group="g", **kw):
    config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id=group, until_idle=4,
                         alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq", **kw)
    ensure_topics(bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    return Scorer(config, engine, load_model(engine, home=home)).run()


def test_stream_equals_offline_batch_scoring(kafka_bootstrap, new_topic, small_csv, db_url,
                                             home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    summary = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=700)
    expected = offline_reference(engine, small_csv, home, ids)
    assert summary.consumed == 6000 and summary.dlq == 0
    got = streamed_result(engine)
    assert got == expected
    assert len(got.alert_ids) == expected.tp + expected.fp > 0
    # Alerts were published too, keyed by transaction id, valid alert events.
    consumer = KafkaConsumer(f"{topic}.alerts", bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    published = {m.key.decode(): json.loads(m.value) for m in consumer}
    consumer.close()
    assert set(published) == set(expected.alert_ids)
    assert all(a["score"] >= a["threshold"] for a in published.values())
    # A restart finds nothing new: no event counted twice.
    before = signal.getsignal(signal.SIGTERM)
    again = run_in_process(kafka_bootstrap, topic, engine, home, batch_size=700)
    assert again.consumed == 0 and streamed_result(engine) == expected
    # The run's SIGTERM/SIGINT handlers were the caller's again afterwards.
    assert signal.getsignal(signal.SIGTERM) is before


MALFORMED = [
    b"{not json", b"", b"[1,2]", b'"a string"', b"null",
    json.dumps({"schema_version": 1}).encode(),  # missing fields
    b'{"schema_version": 1, "transaction_id": "x", "time_s": NaN}',
    b"x" * 20_000,  # oversized
]


def malformed_variants(good: dict) -> list[bytes]:
    out = list(MALFORMED)
    for change in ({"amount": -5.0}, {"schema_version": 7}, {"v3": "abc"}, {"is_fraud": 3},
                   {"transaction_id": 42}, {"v10": None}):
        out.append(json.dumps({**good, **change}).encode())
    return out


# One database (refused while decoding, before any SQL; the good events' rows are checked on
# both databases by the parity tests): .ci/run's time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_malformed_events_go_to_dlq_and_good_counts_stay_exact(
        kafka_bootstrap, new_topic, small_csv, db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    good = json.loads(next(iter(consumer)).value)
    consumer.close()
    bad = malformed_variants(good)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             max_request_size=1_048_576)
    for i, value in enumerate(bad):
        producer.send(topic, key=f"bad-{i}".encode(), value=value, partition=i % 3).get(30)
    producer.close()
    summary = run_in_process(kafka_bootstrap, topic, engine, home)
    assert summary.dlq == len(bad) >= 10
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
    dlq = KafkaConsumer(f"{topic}.dlq", bootstrap_servers=kafka_bootstrap,
                        auto_offset_reset="earliest", consumer_timeout_ms=5000)
    letters = list(dlq)
    dlq.close()
    assert sorted(m.value for m in letters) == sorted(bad)  # original bytes kept
    for m in letters:
        headers = dict(m.headers)
        assert headers["fraudstream.error"].decode().strip()
        assert headers["fraudstream.source"].decode().startswith(f"{topic}/")


@pytest.mark.slow
# SQLite only: the same kills on PostgreSQL are run by test_delayed_truth's kill test (with
# delayed labels) and the keyed SIGKILL test; one database each keeps .ci/run within its time.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sigkill_three_times_then_exact(kafka_bootstrap, new_topic, tmp_path_factory, db_url,
                                        home):
    csv = str(write_csv(tmp_path_factory.mktemp("big") / "big.csv", 50_000, fraud_rate=0.01,
                        seed=21))
    engine = setup_model(csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(csv, kafka_bootstrap, topic)
    rng = random.Random(5)
    kills = 0
    while kills < 3:
        proc = scorer_process(kafka_bootstrap, topic, "crashy", db_url, home,
                              "--batch-size", "250")
        start = committed_offsets(engine, "crashy")
        target = start + rng.randint(1_000, 9_000)
        deadline = time.monotonic() + 120
        while committed_offsets(engine, "crashy") < target and proc.poll() is None:
            assert time.monotonic() < deadline, "scorer made no progress"
            time.sleep(rng.uniform(0.01, 0.2))
        assert proc.poll() is None, "scorer exited before it could be killed"
        kill(proc)
        kills += 1
    assert 0 < committed_offsets(engine, "crashy") < 50_000
    final = finish(scorer_process(kafka_bootstrap, topic, "crashy", db_url, home,
                                  "--until-idle", "5"))
    assert final["consumed"] > 0
    assert committed_offsets(engine, "crashy") == 50_000
    assert streamed_result(engine) == offline_reference(engine, csv, home, ids)


@pytest.mark.slow
# PostgreSQL only (the deployment with concurrent members; the SIGKILL test above runs on SQLite):
# keeps .ci/run within its time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_scorers_share_partitions_exactly(kafka_bootstrap, new_topic, tmp_path_factory,
                                              db_url, home):
    csv = str(write_csv(tmp_path_factory.mktemp("two") / "two.csv", 20_000, fraud_rate=0.01,
                        seed=31))
    engine = setup_model(csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    procs = [scorer_process(kafka_bootstrap, topic, "pair", db_url, home, "--until-idle", "30",
                            "--batch-size", "200") for _ in range(2)]
    wait_for_members(kafka_bootstrap, "pair", 2)  # both joined before any event is sent
    summary = replay(csv, bootstrap=kafka_bootstrap, topic=topic, rate=4000)
    assert summary.sent == 20_000
    results = [finish(p) for p in procs]
    assert all(r["consumed"] > 0 for r in results), results  # both did work
    assert sum(r["consumed"] for r in results) >= 20_000
    ids = [transaction_id(source_tag(csv), line) for line in range(2, 20_002)]
    assert streamed_result(engine) == offline_reference(engine, csv, home, ids)


def test_sigterm_finishes_the_batch_commits_and_exits_zero(kafka_bootstrap, new_topic,
                                                           small_csv, db_url, home):
    engine = setup_model(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    replay_all(small_csv, kafka_bootstrap, topic)
    proc = scorer_process(kafka_bootstrap, topic, "graceful", db_url, home, "--batch-size", "20")
    deadline = time.monotonic() + 120
    while committed_offsets(engine, "graceful") < 200:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    summary = finish(proc, timeout=60)
    committed = committed_offsets(engine, "graceful")
    assert 200 <= summary["consumed"] == committed < 6000  # stopped early, nothing half-done
    counts = streamed_result(engine)
    assert counts.tp + counts.fp + counts.tn + counts.fn == committed


@pytest.mark.postgres
def test_database_outage_mid_run_is_retried_and_stays_exact(kafka_bootstrap, new_topic,
                                                            small_csv, home):
    from sqlalchemy.engine import make_url

    from tests.conftest import postgres_url, reset_postgres
    from tests.tcp_proxy import TcpProxy

    real = postgres_url()
    reset_postgres(real)
    engine = setup_model(small_csv, real, home)
    parsed = make_url(real)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    via_proxy = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    proc = scorer_process(kafka_bootstrap, topic, "outage", via_proxy, home,
                          "--batch-size", "50", "--until-idle", "10")
    deadline = time.monotonic() + 120
    while committed_offsets(engine, "outage") < 500:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proxy.cut()  # the database is gone mid-stream ...
    time.sleep(6)
    assert proc.poll() is None  # ... the scorer waits and retries instead of dying
    stalled = committed_offsets(engine, "outage")
    proxy.restore()
    out, err = proc.communicate(timeout=180)
    proxy.cut()
    assert proc.returncode == 0, err[-3000:]
    assert "retrying" in err
    assert stalled < 6000 == committed_offsets(engine, "outage")
    assert streamed_result(engine) == offline_reference(engine, small_csv, home, ids)
