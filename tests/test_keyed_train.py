"""`fraudstream train` / `retrain --csv` on keyed data: the protocol, behaviour features, the
three metrics in the report and `models show`, and the spec hash checked on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fraudstream_cli import main
from models.evaluation import card_precision_top_k
from schemas.errors import FraudstreamError
from scorer.model import load_model
from store import registry
from store.db import connect
from trainer.keyed_synth import SimulationParams, write_keyed_csv


@pytest.fixture(scope="module")
def keyed_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("keyed") / "sim.csv"
    write_keyed_csv(path, SimulationParams(customers=300, terminals=600, days=60, seed=11))
    return path


def test_card_precision_top_k_by_hand():
    day = np.array([0, 0, 0, 0, 1, 1, 1])
    card = np.array(["a", "a", "b", "c", "a", "b", "c"])
    y = np.array([1, 0, 0, 1, 1, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.3, 0.99, 0.5, 0.4])
    # day 0: cards by max score a 0.9 (fraud), b 0.8, c 0.3 -> top-2 {a, b}: 1/2
    # day 1: a was found compromised, left out: b 0.5, c 0.4 (fraud) -> top-2: 1/2
    assert card_precision_top_k(day, card, y, p, k=2) == 0.5
    # top-1: day 0 a (1/1); day 1 b (0/1)
    assert card_precision_top_k(day, card, y, p, k=1) == 0.5


def test_train_on_keyed_csv_registers_a_keyed_model_with_the_protocol(keyed_csv, home, capsys):
    db = f"sqlite:///{home / 'fs.db'}"
    assert main(["train", "--csv", str(keyed_csv), "--family", "xgboost", "--db", db,
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input"] == "transaction.v2"
    assert set(summary["protocol"]) == {"train", "delay (left out)", "test"}
    assert summary["protocol"]["test"]["last_day"] == "2018-05-30"  # the data's last day
    assert summary["protocol"]["train"]["first_day"] == "2018-05-10"
    test = summary["metrics"]["test"]
    assert 0.5 < test["auc"] <= 1 and 0 < test["prc"] <= 1
    assert 0 <= test["card_precision_top_k"] <= 1 and test["top_k"] == 100
    report = open(summary["report"]).read()
    assert "Protocol" in report and "delay (left out): 2018-05-17 .. 2018-05-23" in report
    assert "card precision top-100" in report

    assert main(["models", "show", str(summary["version"]), "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "card_precision_top_100=" in shown and "keyed (transaction.v2)" in shown
    assert "trained 2018-05-10 .. 2018-05-16, left out 2018-05-17 .. 2018-05-23, tested " \
           "2018-05-24 .. 2018-05-30" in shown

    engine = connect(db)
    with pytest.raises(FraudstreamError, match="takes keyed transactions"):
        load_model(engine, summary["version"])  # the stateless scorer cannot use it
    model = load_model(engine, summary["version"], keyed=True)
    assert model.input == "transaction.v2"
    record = registry.get(engine, summary["version"])
    assert record.training["behaviour_spec_sha256"] == summary["behaviour_spec_sha256"]
    spec_file = record.path() / "behaviour_spec.json"
    spec_file.write_text(spec_file.read_text().replace('"delay_days": 7', '"delay_days": 6'))
    with pytest.raises(FraudstreamError, match="hash"):
        load_model(engine, summary["version"], keyed=True)


def test_baseline_without_behaviour_and_bad_protocol(keyed_csv, home, capsys):
    db = f"sqlite:///{home / 'fs.db'}"
    assert main(["train", "--csv", str(keyed_csv), "--family", "xgboost", "--db", db,
                 "--no-behaviour", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    record = registry.get(connect(db), summary["version"])
    assert record.training["behaviour_spec"]["inputs"] == ["amount", "weekend", "night"]
    assert main(["train", "--csv", str(keyed_csv), "--db", db, "--train-start", "2018-01-01"]) \
        == 2
    assert "the protocol needs 21 days from 2018-01-01" in capsys.readouterr().err


def test_retrain_csv_on_keyed_data_gates_against_production(keyed_csv, home, tmp_path, capsys):
    from trainer.synth import write_csv

    db = f"sqlite:///{home / 'fs.db'}"
    ulb = write_csv(tmp_path / "ulb.csv", 3000, fraud_rate=0.02, seed=1)
    assert main(["train", "--csv", str(ulb), "--family", "xgboost", "--db", db, "--json"]) == 0
    capsys.readouterr()
    # production takes transaction.v1: the keyed candidate is held, with the reason
    assert main(["retrain", "--csv", str(keyed_csv), "--family", "xgboost", "--db", db,
                 "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["input"] == "transaction.v2" and first["production_before"] == 1
    (candidate,) = first["candidates"]
    assert candidate["outcome"] == "held" and first["production_after"] == 1
    decision = registry.promotion_history(connect(db), candidate["version"])[-1]
    assert "cannot score keyed data" in decision.comparison["reason"]
    assert "card_precision_top_k" in candidate["test"]
    assert main(["models", "promote", str(candidate["version"]), "--db", db]) == 0
    capsys.readouterr()
    # keyed production: the gate scores it on the same protocol test set
    assert main(["retrain", "--csv", str(keyed_csv), "--family", "xgboost", "--db", db,
                 "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "delay (left out)  2018-05-17 .. 2018-05-23" in out
    assert f"production: v{candidate['version']}" in out or "(was v" in out
    history = registry.promotion_history(connect(db), candidate["version"] + 1)
    assert history[-1].previous_version == candidate["version"]
    assert "candidate" in history[-1].comparison and "production" in history[-1].comparison
