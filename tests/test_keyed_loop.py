"""The keyed loop's pieces against a real broker and SQLite: retraining from the stream on keyed
events (read back from the topic, labels and their observation times from the store, behaviour
features by the one implementation) and the gate against a keyed production model."""

from __future__ import annotations

import contextlib
import io
import json
import time

import numpy as np
import pytest

from fraudstream_cli import main
from schemas.behaviour import model_inputs
from scorer.keyed_check import recheck
from store import registry
from store.db import connect
from stream.readback import read_back
from tests import test_keyed_stream
from tests.test_keyed_stream import replay_with_labels, train_keyed
from trainer.data import load_data
from trainer.keyed_pipeline import KeyedOptions
from trainer.keyed_stream import keyed_stream_data
from trainer.retrain import RetrainOptions

pytestmark = pytest.mark.kafka
keyed_csv = test_keyed_stream.keyed_csv  # the same small simulation (module-scoped fixture)


def cli_json(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_retrain_from_the_stream_on_keyed_events(kafka_bootstrap, new_topic, db_url, keyed_csv,
                                                 home):
    production = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic, n = replay_with_labels(kafka_bootstrap, new_topic, keyed_csv, engine)
    summary = cli_json("retrain", "--topic", topic, "--bootstrap-servers", kafka_bootstrap,
                       "--family", "xgboost", "--mature-after", "7d", "--db", db_url, "--json")
    t = summary["training"]
    assert (summary["source"], summary["input"], t["source"]) == (
        "stream", "transaction.v2", "stream")
    assert t["synthetic"] is True and t["records_read"] == n and t["dead_lettered"] == 0
    # events younger than the label window (7 days before the newest) are left out
    csv = load_data(str(keyed_csv))
    cutoff = csv.time_us.max() - 7 * 86_400 * 10**6
    assert t["rows"] == int((csv.time_us <= cutoff).sum()) == n - t["labels"]["left_out"]
    assert t["frauds"] == int(csv.y[csv.time_us <= cutoff].sum()) > 0
    [candidate] = summary["candidates"]
    assert candidate["gate"]["production"]  # judged against the keyed production's scores
    [decision] = registry.promotion_history(engine, candidate["version"])
    assert decision.comparison["production_version"] == production
    record = registry.get(engine, candidate["version"])
    assert record.training["input"] == "transaction.v2"
    assert record.training["source"] == "stream"

    # The round's features: those of the stream's events with each fraud known when its label
    # was observed (7 days after it, the replay's delay), so equal to the CSV's offline ones.
    opts = RetrainOptions(topic=topic, mature_after_s=7 * 86_400.0)
    dataset, _ = keyed_stream_data(engine, opts, read_back(kafka_bootstrap, topic))
    spec = KeyedOptions().spec()
    stream_inputs = model_inputs(spec, dataset.history(spec.delay_days))
    offline = model_inputs(spec, csv.history(spec.delay_days))
    row = {f"sim:{tid}": i for i, tid in enumerate(csv.transaction_id)}
    index = np.array([row[tid] for tid in dataset.transaction_id])
    assert np.array_equal(dataset.y, csv.y[index])
    np.testing.assert_allclose(stream_inputs, offline[index], rtol=0, atol=1e-9)
    assert stream_inputs[:, spec.input_names().index("terminal_risk_7d")].max() > 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_counts_ranking_gives_auc_ap_and_card_precision_per_version(db_url):
    """`counts --ranking`: each version on its matured decisions (labelled, or unlabelled and
    older than the label window); CP@k from the cards on record (keyed transactions only)."""
    from datetime import UTC, datetime, timedelta

    from models.evaluation import card_precision_top_k, evaluate
    from store.tables import decisions, keyed_transactions, labels

    engine = connect(db_url)
    rng = np.random.default_rng(3)
    start = datetime(2018, 5, 1, tzinfo=UTC)
    n = 300
    when = [start + timedelta(hours=int(h)) for h in sorted(rng.integers(0, 24 * 6, n))]
    card = [f"c{i}" for i in rng.integers(0, 40, n)]
    y = (rng.random(n) < 0.2).astype(int)
    score = np.clip(0.3 * y + rng.random(n) * 0.8, 0, 1)
    decision = {"threshold": 0.5, "amount": 1.0, "source_topic": "t", "source_partition": 0,
                "scored_at": start}
    with engine.begin() as conn:
        conn.execute(decisions.insert(), [
            {**decision, "transaction_id": f"k{i}", "model_version": 1, "score": float(score[i]),
             "flagged": bool(score[i] > 0.5), "event_time": when[i], "source_offset": i}
            for i in range(n)] + [  # v2: a v1 (ULB) model, no card on record
            {**decision, "transaction_id": f"u{i}", "model_version": 2, "score": float(score[i]),
             "flagged": False, "event_time": when[i], "source_offset": n + i}
            for i in range(n)])
        conn.execute(keyed_transactions.insert(), [
            {"transaction_id": f"k{i}", "terminal_id": "t", "time_us": i, "customer_id": card[i],
             "amount": 1.0} for i in range(n)])
        conn.execute(labels.insert(), [
            {"label_id": f"l{p}{i}", "transaction_id": f"{p}{i}", "is_fraud": 1,
             "source": "chargeback", "observed_at": when[i], "received_at": when[i]}
            for i in np.flatnonzero(y) for p in "ku"])
    summary = cli_json("counts", "--ranking", "--mature-after", "1d", "--db", db_url, "--json",
                       "--top-k", "5")
    v1, v2 = summary["rows"]
    # matured: every fraud (labelled) and every genuine one older than a day before the last
    mature = (y == 1) | (np.array(when) <= when[-1] - timedelta(days=1))
    expected = evaluate(y[mature], score[mature], 0.5)
    days = np.array([w.date().toordinal() for w in when])[mature]
    assert (v1["model_version"], v1["matured"], v1["frauds"]) == (1, mature.sum(), y.sum())
    assert v1["roc_auc"] == pytest.approx(expected["auc"])
    assert v1["average_precision"] == pytest.approx(expected["prc"])
    assert v1["card_precision_top_k"] == pytest.approx(card_precision_top_k(
        days, np.array(card, dtype=object)[mature], y[mature], score[mature], 5))
    assert 0 < v1["card_precision_top_k"] <= 1
    assert v2["roc_auc"] == pytest.approx(expected["auc"])
    assert v2["card_precision_top_k"] is None  # no card on record


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql",
                                                           marks=pytest.mark.postgres)],
                         indirect=True)
def test_keyed_shadow_and_hot_reload_to_longer_card_windows(kafka_bootstrap, new_topic, db_url,
                                                            keyed_csv, home):
    """Production v1 has no card windows (its card state keeps one hour); then a keyed shadow
    v2 with 1/7/30-day windows scores beside it (the state's retention grows: older card rows
    are read back from the store); then v2 is promoted and the running scorer switches to it
    at a batch boundary. Every v2 score — shadow and production — and every production vector
    equals the offline implementation's with v2's spec."""
    from producer.topics import ensure_topics
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.tables import card_retention

    def train(*extra: str) -> int:
        return int(cli_json("train", "--csv", str(keyed_csv), "--family", "xgboost", "--db",
                            db_url, "--json", "--train-start", "2018-04-08", *extra)["version"])

    v1, v2 = train("--no-behaviour"), train()
    engine = connect(db_url)
    assert registry.get(engine, "production").version == v1
    topic, n = replay_with_labels(kafka_bootstrap, new_topic, keyed_csv, engine)
    ensure_topics(kafka_bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})

    def run(model: int, shadow: int | None = None, **kw) -> dict:
        config = ScoreConfig(bootstrap=kafka_bootstrap, topic=topic, batch_size=200,
                             until_idle=4, alerts_topic=f"{topic}.alerts",
                             dlq_topic=f"{topic}.dlq", log_features=True, **kw)
        return Scorer(config, engine, load_model(engine, model, keyed=True),
                      reload_check=0.05,
                      shadow=None if shadow is None else load_model(engine, shadow, keyed=True)
                      ).run().to_dict()

    first = run(v1, max_messages=n // 3)
    with engine.connect() as conn:
        [(short, _)] = conn.execute(card_retention.select().with_only_columns(
            card_retention.c.retention_us, card_retention.c.complete_from_us)).all()
    assert short == 3_600 * 10**6  # no card window: the allowed lateness only
    beside = run(v1, shadow=v2, max_messages=n // 3)
    assert beside["shadow_version"] == v2 and beside["shadow_scored"] == beside["scored"] > 0
    registry.promote(engine, v2, decided_by="person:test")
    last = run(v1)  # the production group's fence switches it to v2 at a batch boundary
    assert (last["model_version"], last["reloads"]) == (v2, 1)
    assert first["scored"] + beside["scored"] + last["scored"] == n
    check = recheck(engine, keyed_csv, v2)
    assert check.decided == beside["scored"] + last["scored"]
    assert check.with_features == check.decided  # shadow and production (--log-features)
    assert check.max_feature_diff <= 1e-9 and check.scores_equal and check.risk_used
    with engine.connect() as conn:
        [(grown, complete_from)] = conn.execute(card_retention.select().with_only_columns(
            card_retention.c.retention_us, card_retention.c.complete_from_us)).all()
    assert grown == (30 * 86_400 + 3_600) * 10**6 and complete_from > 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_keyed_scorer_waits_for_a_lagging_label_sink(kafka_bootstrap, new_topic, db_url,
                                                    keyed_csv, home):
    """With --label-sink, an event is scored only once the label sink has stored every label
    observed by its time: a label sink that has not run holds every decision back (none is made
    without the truth it would have seen), and once it runs the decisions equal offline."""
    import threading

    from sqlalchemy import func, select

    from labels.service import consume_labels
    from producer.replay import replay
    from producer.topics import ensure_topics
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.tables import decisions
    from stream import ConsumerConfig

    version = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic, labels_topic = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)
    sent = replay(str(keyed_csv), bootstrap=kafka_bootstrap, topic=topic, labels="delayed:7d",
                  labels_topic=labels_topic)
    ensure_topics(kafka_bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    config = ScoreConfig(bootstrap=kafka_bootstrap, topic=topic, group_id="keyed", until_idle=4,
                         alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq",
                         log_features=True, batch_size=500, label_sink_group="labels",
                         labels_topic=labels_topic)
    scorer = Scorer(config, engine, load_model(engine, version, keyed=True))
    pipeline = scorer.pipeline
    marks: list[int] = []
    read_mark = pipeline.label_mark
    pipeline.label_mark = lambda: marks.append(read_mark()) or marks[-1]  # count the batches
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(scorer.run().to_dict()))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while len(marks) < 3:  # three batches planned while no label is stored
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.1)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(decisions)).scalar() == 0
    except BaseException:
        scorer.request_stop()
        thread.join(timeout=60)
        raise
    consume_labels(ConsumerConfig(bootstrap=kafka_bootstrap, topic=labels_topic,
                                  group_id="labels", dlq_topic=f"{labels_topic}.dlq",
                                  until_idle=3), engine)
    thread.join(timeout=300)
    assert result["scored"] == sent.sent and result["dlq"] == 0
    check = recheck(engine, keyed_csv, version)
    assert check.decided == check.with_features == check.transactions
    assert check.max_feature_diff <= 1e-9 and check.scores_equal and check.risk_used
