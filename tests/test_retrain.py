"""``fraudstream retrain``: from the real broker and store (no CSV) and from a CSV; every gate
decision and every promotion by a person recorded; the ``--every`` schedule stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models.evaluation import evaluate
from producer.replay import replay, source_tag, transaction_id
from producer.topics import ensure_topics
from schemas.errors import FraudstreamError
from schemas.events import event_time
from scorer.model import load_model
from store import registry
from store.db import connect
from store.tables import decisions, labels
from trainer.data import load_csv
from trainer.gate import GateRule
from trainer.oot import out_of_time_split
from trainer.pipeline import train
from trainer.retrain import RetrainOptions, retrain, stream_data
from trainer.retrain_cli import run_every, stop_on_signals
from trainer.synth import write_csv

HOUR = 3600.0


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return str(
        write_csv(tmp_path_factory.mktemp("d") / "small.csv", 6000, fraud_rate=0.02, seed=23)
    )


def label_row(tid: str, fraud: bool, observed: datetime, n: int, source: str = "chargeback"
              ) -> dict:
    return {
        "label_id": f"test:{tid}:{n}",
        "transaction_id": tid,
        "is_fraud": int(fraud),
        "source": source,
        "observed_at": observed,
        "received_at": datetime.now(UTC),
    }


@pytest.mark.kafka
def test_retrain_from_the_stream_records_window_labels_and_gate(
    kafka_bootstrap, new_topic, small_csv, db_url, home
):
    train(small_csv, family="xgboost", seed=3, db=db_url, home=home)  # v1: production
    engine = connect(db_url)
    topic = new_topic(kafka_bootstrap)
    ensure_topics(kafka_bootstrap, {topic: 3})
    sent = replay(small_csv, bootstrap=kafka_bootstrap, topic=topic, partitions=3, labels="none")
    assert sent.sent == 6000 and sent.failed == 0
    data = load_csv(small_csv)
    ids = [transaction_id(source_tag(small_csv), i + 2) for i in range(len(data.y))]
    newest = float(data.time.max())
    # The truth so far: frauds older than 3 h have their chargeback; every 7th genuine row was
    # confirmed by an analyst; two labels were corrected later (the latest label wins).
    rows, truth = [], {}
    for i, (tid, t, y) in enumerate(zip(ids, data.time, data.y, strict=True)):
        if (y == 1 and t < newest - 3 * HOUR) or (y == 0 and i % 7 == 0):
            rows.append(label_row(tid, bool(y), event_time(t + HOUR), 0,
                                  "chargeback" if y else "analyst"))
            truth[tid] = int(y)
    fixed = [next(t for t in ids if truth.get(t) == 1), next(t for t in ids if truth.get(t) == 0)]
    for tid in fixed:
        truth[tid] = 1 - truth[tid]
        rows.append(label_row(tid, bool(truth[tid]), event_time(newest + HOUR), 1))
    # Poison: later, "analysts" mark the six most recent mature frauds genuine, against their
    # chargebacks — frauds of the slice the gate judges on.
    cutoff_s = newest - 2 * HOUR - 6 * HOUR
    poisoned = [ids[i] for i in np.argsort(data.time) if data.y[i] == 1
                and data.time[i] <= cutoff_s][-6:]
    for tid in poisoned:
        truth[tid] = 0
        rows.append(label_row(tid, False, event_time(newest + 2 * HOUR), 2, "analyst"))
    # The scorer has decided events up to 2 h before the newest: that is the stream's clock.
    clock = event_time(newest - 2 * HOUR)
    with engine.begin() as conn:
        conn.execute(labels.insert(), rows)
        conn.execute(
            decisions.insert().values(
                transaction_id="clock",
                model_version=1,
                score=0.0,
                threshold=0.5,
                flagged=False,
                amount=1.0,
                event_time=clock,
                source_topic=topic,
                source_partition=0,
                source_offset=0,
                scored_at=datetime.now(UTC),
            )
        )

    opts = RetrainOptions(
        families=("dense", "xgboost"),
        bootstrap=kafka_bootstrap,
        topic=topic,
        mature_after_s=6 * HOUR,
        epochs=2,
        seed=1,
        rule=GateRule(min_frauds=5),
        db=db_url,
        home=home,
    )
    summary = retrain(opts)

    labelled = np.array([t in truth for t in ids])
    mature = data.time <= cutoff_s
    y_used = np.array([truth.get(t, 0) for t in ids])[mature]
    label = np.array([truth.get(t, -1) for t in ids])
    expected = {
        "events": 6000,
        "fraud": int(np.sum(mature & (label == 1))),
        "genuine": int(np.sum(mature & (label == 0))),
        "matured": int(np.sum(~labelled & mature)),
        "left_out": int(np.sum(~mature)),
        "duplicates": 0,
    }
    assert expected["left_out"] > 0 and expected["matured"] > 0
    assert np.sum(labelled & ~mature) > 0  # recent labelled events exist, and are left out
    training = summary["training"]
    assert training["labels"] == expected
    assert training["rows"] == 6000 - expected["left_out"] == len(y_used)
    assert training["frauds"] == int(y_used.sum())
    assert training["source"] == "stream" and training["topic"] == topic
    # The replayed file was a synthetic stand-in: its events said so, and so does every model.
    assert training["synthetic"] is True and training["synthetic_events"] == 6000
    assert training["as_of"] == clock.isoformat()
    assert training["window"]["first_event"] == event_time(float(data.time.min())).isoformat()
    assert training["window"]["last_event"] == event_time(newest).isoformat()
    split = training["split"]
    assert split["kind"] == "out-of-time"
    assert split["train"]["last_time_s"] <= split["val"]["first_time_s"]
    assert split["val"]["last_time_s"] <= split["test"]["first_time_s"]  # no later event trained
    assert sum(split[k]["rows"] for k in ("train", "val", "test")) == training["rows"]

    versions = [c["version"] for c in summary["candidates"]]
    assert versions == [2, 3] and summary["production_before"] == 1
    for c in summary["candidates"]:
        record = registry.get(engine, c["version"])
        assert record.family == c["family"] and record.training == training
        (decision,) = registry.promotion_history(engine, c["version"])
        assert decision.decided_by == "gate" and decision.outcome == c["outcome"]
        assert decision.previous_version == 1 and decision.rule == opts.rule.describe()
        start = decision.window_start  # SQLite gives it back naive (UTC)
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        assert start == event_time(split["test"]["first_time_s"])
        comparison = decision.comparison
        assert comparison["slice"]["rows"] == split["test"]["rows"]
        # the slice's label provenance: the poisoned verdicts are analysts' contradicting
        # chargebacks, so the round holds (or rejects) every candidate and promotes none
        labels_of = comparison["provenance"]
        assert labels_of["contradicted"] == labels_of["contradicted_fraud"] == 6
        assert labels_of["negatives"]["analyst"] >= 6 and set(labels_of["positives"]) == {
            "chargeback"}
        assert sum(labels_of["positives"].values()) == comparison["frauds"] == \
            split["test"]["frauds"]
        assert "6 analyst label(s) in the slice contradict" in comparison["warnings"][0]
        assert comparison["status"] in ("held", "failed") and c["outcome"] != "promoted"
        if comparison["status"] == "held":
            assert c["outcome"] == "held" and "labels in dispute" in comparison["reason"]
        assert comparison["auprc_gain_interval"]["resamples"] == 1000
        report = (home / "reports" / f"v{c['version']}" / "index.html").read_text()
        assert '<span class="synthetic">SYNTHETIC</span>' in report
    assert registry.get(engine, "production").version == 1

    # The gate saw production's true figures on that same most recent slice.
    assembled, _ = stream_data(engine, opts)
    tsplit = out_of_time_split(assembled.dataset)
    production = load_model(engine, 1, home=home)
    offline = evaluate(
        tsplit.splits.y_test, production.score_raw(tsplit.splits.test_raw), production.threshold
    )
    gate = summary["candidates"][1]["gate"]
    assert gate["production"]["prc"] == pytest.approx(offline["prc"])
    assert gate["production"]["tp"] == offline["tp"]


def test_retrain_from_csv_gate_and_promote_never(small_csv, tmp_path, home):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    first = retrain(RetrainOptions(families=("xgboost",), csv=small_csv, db=db, seed=1))
    assert first["production_before"] is None and first["production_after"] == 1
    engine = connect(db)
    (row,) = registry.promotion_history(engine)
    assert (row.version, row.outcome, row.decided_by) == (1, "promoted", "gate")
    assert registry.get(engine, 1).training["split"]["kind"] == "out-of-time"
    # Anything passes a gate asking for AUPRC - 1 and allowing any recall drop on a slice of
    # one fraud or more; "never" holds it.
    lenient = GateRule(-1.0, 1.0, min_frauds=1)
    held = retrain(
        RetrainOptions(
            families=("xgboost",), csv=small_csv, db=db, seed=2, rule=lenient, promote="never"
        )
    )
    assert held["candidates"][0]["outcome"] == "held" and held["production_after"] == 1
    assert registry.latest_promotions(engine)[2].comparison["held_because"] == "--promote never"
    auto = retrain(
        RetrainOptions(
            families=("xgboost",),
            csv=small_csv,
            db=db,
            seed=2,
            rule=lenient,
            since=event_time(3600.0),
        )
    )
    assert auto["candidates"][0]["outcome"] == "promoted" and auto["production_after"] == 3
    assert auto["training"]["window"]["since"] == event_time(3600.0).isoformat()
    assert registry.latest_promotions(engine)[3].previous_version == 1
    strict = retrain(
        RetrainOptions(
            families=("xgboost",), csv=small_csv, db=db, seed=2,
            rule=GateRule(0.5, 0.0, min_frauds=1),
        )
    )
    assert strict["candidates"][0]["outcome"] == "rejected" and strict["production_after"] == 3
    both = retrain(
        RetrainOptions(
            families=("dense", "xgboost"), csv=small_csv, db=db, seed=3, epochs=2, rule=lenient
        )
    )  # both pass: the better one wins
    by_outcome = {c["outcome"]: c for c in both["candidates"]}
    assert set(by_outcome) == {"promoted", "held"}
    won, held_back = by_outcome["promoted"], by_outcome["held"]
    assert won["test"]["prc"] >= held_back["test"]["prc"]
    assert both["production_after"] == won["version"]
    assert (
        registry.latest_promotions(engine)[held_back["version"]].comparison["held_because"]
        == f"v{won['version']} had the higher AUPRC"
    )
    with pytest.raises(FraudstreamError, match="not both"):
        retrain(RetrainOptions(csv=small_csv, db=db, days=1.0, since=event_time(0.0)))
    with pytest.raises(FraudstreamError, match="unknown model family"):
        retrain(RetrainOptions(families=("forest",), csv=small_csv, db=db))


def test_models_promote_by_a_person_is_recorded_and_shown(
    small_csv, db_url, home, capsys, monkeypatch
):
    import fraudstream_cli

    for seed in (1, 2):
        retrain(RetrainOptions(families=("xgboost",), csv=small_csv, db=db_url, seed=seed))
    assert fraudstream_cli.main(["models", "promote", "2", "--by", "alice", "--db", db_url]) == 0
    monkeypatch.setenv("LOGNAME", "bob")
    monkeypatch.setenv("USER", "bob")
    assert fraudstream_cli.main(["models", "promote", "1", "--db", db_url]) == 0
    assert fraudstream_cli.main(["models", "promote", "1", "--db", db_url]) == 0  # no change
    history = registry.promotion_history(connect(db_url))
    people = [(r.version, r.previous_version, r.outcome, r.decided_by) for r in history[2:]]
    assert people == [(2, 1, "promoted", "person:alice"), (1, 2, "promoted", "person:bob")]
    capsys.readouterr()
    fraudstream_cli.main(["models", "show", "1", "--db", db_url])
    assert "last decision: promoted by person:bob" in capsys.readouterr().out
    fraudstream_cli.main(["models", "list", "--db", db_url])
    (v2,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("v2 ")]
    assert "promoted by person:alice" in v2 and "(production was v1)" in v2
    fraudstream_cli.main(["models", "show", "2", "--json", "--db", db_url])
    shown = json.loads(capsys.readouterr().out)
    assert shown["promotion"]["decided_by"] == "person:alice"
    assert shown["training"]["labels"]["events"] == 6000
    assert fraudstream_cli.main(["models", "promote", "2", "--by", "a b", "--db", db_url]) == 2


def test_every_runs_rounds_until_sigterm():
    stop = threading.Event()
    calls = []

    def one_round():
        calls.append(datetime.now(UTC))
        if len(calls) == 1:
            raise FraudstreamError("too few labels yet")  # logged; the schedule goes on
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    started = datetime.now(UTC)
    with stop_on_signals(stop):
        rounds = run_every(0.05, one_round, stop)
    assert rounds == 3 and stop.is_set()
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_retrain_every_stops_cleanly_on_sigterm(small_csv, tmp_path, home):
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "FRAUDSTREAM_HOME": str(home),
        "FRAUDSTREAM_DB_URL": f"sqlite:///{tmp_path / 'every.db'}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraudstream_cli",
            "retrain",
            "--csv",
            small_csv,
            "--family",
            "xgboost",
            "--every",
            "1h",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(proc.stdout.readline())  # the first round's summary
        assert first["candidates"][0]["outcome"] == "promoted"
        time.sleep(0.5)  # now asleep until the next round
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert out.strip() == "" and "stopped after 1 round" in err


def test_retrain_trains_every_family_by_default_and_train_keeps_the_dense_net(
    small_csv, tmp_path, home, capsys
):
    """A retraining job lets the gate choose among every family unless told otherwise; the
    tutorial's `train` keeps its dense default."""
    import fraudstream_cli

    db = f"sqlite:///{tmp_path / 'defaults.db'}"
    argv = ["retrain", "--csv", small_csv, "--epochs", "2", "--json", "--db", db]
    assert fraudstream_cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sorted(c["family"] for c in summary["candidates"]) == ["dense", "xgboost"]
    assert RetrainOptions().families == ("dense", "xgboost")
    parser = fraudstream_cli.build_parser()
    assert parser.parse_args(["train"]).family == "dense"
    one = parser.parse_args(["retrain", "--family", "xgboost"])
    from trainer.retrain_cli import options

    assert options(one).families == ("xgboost",)
