"""Keyed scoring in the stream against a real broker and both databases: the feature vector
behind every decision equals the offline implementation's with the labels known at that point,
every score equals an offline scoring of that vector, and bad keyed input goes to the DLQ with
its reason without blocking the partition.

CI uses a small simulation (a few thousand events, 3 partitions);
``bench/keyed_parity.py`` runs the same check on >= 100,000 events."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from sqlalchemy import case, func, select

from fraudstream_cli import main
from producer.replay import replay
from producer.topics import ensure_topics
from scorer.keyed_check import recheck
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
from store.db import connect
from store.tables import alerts, cases, decisions, keyed_transactions
from stream import ConsumerConfig
from tests.scoring_helpers import (
    committed_offsets,
    finish,
    kill,
    read_all,
    scorer_process,
    send,
)
from trainer.keyed_synth import SimulationParams, write_keyed_csv

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def keyed_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("keyed") / "sim.csv"
    write_keyed_csv(path, SimulationParams(customers=60, terminals=40, days=30, radius=30,
                                           seed=5))
    return path


def train_keyed(csv: Path, db_url: str) -> int:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "--csv", str(csv), "--family", "xgboost", "--db", db_url,
                     "--json", "--train-start", "2018-04-08"]) == 0
    return int(json.loads(out.getvalue())["version"])


def run_keyed(bootstrap: str, topic: str, engine, version: int, **kw) -> dict:
    config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id="keyed",
                         until_idle=kw.pop("until_idle", 4), alerts_topic=f"{topic}.alerts",
                         dlq_topic=f"{topic}.dlq", **kw)
    ensure_topics(bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    return Scorer(config, engine, load_model(engine, version, keyed=True)).run().to_dict()


def test_keyed_stream_features_and_scores_equal_offline(kafka_bootstrap, new_topic, db_url,
                                                        keyed_csv, home):
    version = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic, n = replay_with_labels(kafka_bootstrap, new_topic, keyed_csv, engine)
    summary = run_keyed(kafka_bootstrap, topic, engine, version, log_features=True,
                        batch_size=500)
    assert (summary["scored"], summary["dlq"]) == (n, 0)
    assert_equals_offline(engine, keyed_csv, version)
    assert_identity_recorded(engine, keyed_csv)


def assert_identity_recorded(engine, csv: Path) -> None:
    """Every alert names its event's card; every keyed transaction its card and amount."""
    from producer.replay import source_tag
    from schemas.ids import derived_id
    from trainer.keyed_data import parse_keyed

    data = parse_keyed(csv.read_bytes(), str(csv))
    tag = source_tag(str(csv))
    events = {derived_id(tag, t): (str(c), float(a)) for t, c, a in
              zip(data.transaction_id, data.customer_id, data.amount, strict=True)}
    with engine.connect() as conn:
        facts = {r.transaction_id: (r.customer_id, r.amount) for r in conn.execute(
            select(keyed_transactions.c.transaction_id, keyed_transactions.c.customer_id,
                   keyed_transactions.c.amount))}
        cards = dict(conn.execute(select(alerts.c.transaction_id, alerts.c.card_id)).all())
        grouped = conn.execute(
            select(cases.c.card_id, cases.c.n_alerts, cases.c.status, cases.c.disposition,
                   func.count(alerts.c.transaction_id),
                   func.sum(case((alerts.c.status != "closed", 1), else_=0)))
            .join(alerts, alerts.c.case_id == cases.c.id)
            .group_by(cases.c.id, cases.c.card_id, cases.c.n_alerts, cases.c.status,
                      cases.c.disposition)).all()
    assert facts == events
    assert cards and cards == {t: events[t][0] for t in cards}
    # the scorer put each card's alerts in its case (the desk's card queue), one open at a time:
    # the labels were stored first, so a case whose alerts their chargebacks settled at once
    # was closed by the system (settled) and the card's next alert opened a new one
    assert all(n == counted for _, n, _, _, counted, _ in grouped)
    in_cases = Counter[str]()
    for card, n, *_ in grouped:
        in_cases[card] += n
    assert in_cases == Counter(cards.values())
    assert max(Counter(g[0] for g in grouped if g[2] != "closed").values(), default=0) <= 1
    settled = [g for g in grouped if g[2] == "closed"]
    assert settled and all(g[3] == "settled" and g[5] == 0 for g in settled)


def assert_equals_offline(engine, csv: Path, version: int) -> None:
    """Every decision's feature vector equals the offline implementation's (1e-9) and its
    score an offline scoring of that vector; alerts are the flagged ones, with their vectors."""
    check = recheck(engine, csv, version)
    assert check.decided == check.with_features == check.transactions
    assert check.max_feature_diff <= 1e-9
    assert check.scores_equal and check.alerts_match and check.alerts > 0
    assert check.risk_used  # labels were used


def test_bad_keyed_input_is_dead_lettered_and_the_partition_moves_on(
        kafka_bootstrap, new_topic, db_url, keyed_csv, home):
    version = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic = new_topic(kafka_bootstrap, partitions=1)

    def event(tid: str, when: str, **fields) -> dict:
        return {"schema_version": 2, "transaction_id": tid, "event_time": when, "amount": 12.5,
                "customer_id": "c1", "terminal_id": "t1", **fields}

    good = [event("k-1", "2018-05-01T10:00:00Z"), event("k-7", "2018-05-01T10:30:00Z")]
    bad = [{k: v for k, v in event("k-2", "2018-05-01T10:01:00Z").items()
            if k != "customer_id"},
           event("k-3", "2018-05-01T10:02:00Z", amount="12.5"),
           event("k-4", "2018-05-01T06:00:00Z"),  # 4 h before the partition's clock
           {"schema_version": 1, "transaction_id": "k-5", "time_s": 1.0, "amount": 1.0,
            **{f"v{i}": 0.0 for i in range(1, 29)}}]
    values = [orjson.dumps(e) for e in (good[0], *bad)]
    for value in values:
        send(kafka_bootstrap, topic, [value], key=b"c1")  # partition 0 (one partition)
    send(kafka_bootstrap, topic, [orjson.dumps(event("k-6", "2018-05-01T10:03:00Z"))],
         key=b"c2")  # keyed by another card
    send(kafka_bootstrap, topic, [orjson.dumps(good[1])], key=b"c1")
    summary = run_keyed(kafka_bootstrap, topic, engine, version)
    assert (summary["scored"], summary["dlq"]) == (2, 5)
    letters = read_all(kafka_bootstrap, f"{topic}.dlq")
    assert len(letters) == 5
    text = " | ".join(dict(r.headers)["fraudstream.error"].decode() for r in letters)
    assert "customer_id" in text and "Field required" in text
    assert "amount" in text
    assert "allowed lateness" in text
    assert "transaction.v1 event, but the model in use takes transaction.v2" in text
    assert "keyed by its customer_id" in text
    with engine.connect() as conn:
        decided = sorted(conn.execute(decisions.select().with_only_columns(
            decisions.c.transaction_id)).scalars())
    assert decided == ["k-1", "k-7"]


def replay_with_labels(bootstrap: str, new_topic, csv: Path, engine) -> tuple[str, int]:
    """Replay ``csv`` with labels delayed 7 days; store every label (the label sink, to the
    end); return the transactions topic and how many were sent."""
    from labels.service import consume_labels

    topic, labels_topic = new_topic(bootstrap), new_topic(bootstrap)
    sent = replay(str(csv), bootstrap=bootstrap, topic=topic, labels="delayed:7d",
                  labels_topic=labels_topic)
    assert sent.failed == 0 and sent.labels_sent > 0
    consume_labels(ConsumerConfig(bootstrap=bootstrap, topic=labels_topic, group_id="labels",
                                  dlq_topic=f"{labels_topic}.dlq", until_idle=3), engine)
    return topic, sent.sent


@pytest.mark.slow
# PostgreSQL only (the deployment with concurrent members; the parity and bad-input tests run on
# both databases): keeps .ci/run within its time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_keyed_state_is_exact_through_sigkills_and_a_member_joining_and_leaving(
        kafka_bootstrap, new_topic, db_url, keyed_csv, home):
    version = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic, n = replay_with_labels(kafka_bootstrap, new_topic, keyed_csv, engine)
    ensure_topics(kafka_bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    args = ("--batch-size", "40", "--log-features")
    rng = random.Random(20)
    for kills in range(3):
        proc = scorer_process(kafka_bootstrap, topic, "crashy", db_url, home, *args)
        second = None
        if kills == 1:  # a second member joins (partitions move) and leaves again
            second = scorer_process(kafka_bootstrap, topic, "crashy", db_url, home, *args)
        target = committed_offsets(engine, "crashy") + rng.randint(200, 600)
        deadline = time.monotonic() + 180
        while committed_offsets(engine, "crashy") < target and proc.poll() is None:
            assert time.monotonic() < deadline, "scorer made no progress"
            time.sleep(rng.uniform(0.01, 0.2))
        if second is not None:
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=120)
        assert proc.poll() is None, "scorer exited before it could be killed"
        kill(proc)
    assert 0 < committed_offsets(engine, "crashy") < n
    finish(scorer_process(kafka_bootstrap, topic, "crashy", db_url, home, *args,
                          "--until-idle", "5"))
    assert committed_offsets(engine, "crashy") == n
    assert_equals_offline(engine, keyed_csv, version)
