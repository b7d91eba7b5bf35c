"""The trainer end to end on synthetic data: registration, JSON summary, reproducibility."""

import json
import subprocess
import sys

import numpy as np
import pytest

from scorer.model import load_model
from store import registry
from store.db import connect
from trainer.data import load_csv, split
from trainer.pipeline import train
from trainer.synth import write_csv


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return str(write_csv(tmp_path_factory.mktemp("data") / "d.csv", 12_000, fraud_rate=0.02,
                         seed=5))


def test_train_registers_and_reports(csv, home, db_url):
    summary = train(csv, epochs=4, seed=1, db=db_url)
    assert summary["version"] == 1 and summary["stage"] == "production"
    for split_name in ("val", "test"):
        m = summary["metrics"][split_name]
        assert {"tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "auc", "prc",
                "brier", "log_loss"} <= set(m)
        assert 0.5 < m["auc"] < 1.0  # learns, but the synthetic data is not separable
    test = summary["metrics"]["test"]
    assert test["tp"] + test["fp"] + test["tn"] + test["fn"] == 2400
    assert (home / "models" / "1" / "model.keras").is_file()
    assert summary["report"].endswith("index.html")
    engine = connect(db_url)
    record = registry.get(engine, 1)
    assert record.threshold == pytest.approx(summary["threshold"])
    assert record.data_sha256 == load_csv(csv).sha256
    # The registered model, loaded the way the scorer loads it, reproduces the test metrics.
    model = load_model(engine, 1, home=home)
    splits = split(load_csv(csv), seed=1)
    flagged = model.score_raw(splits.test_raw) >= model.threshold
    assert int(np.sum(flagged & (splits.y_test == 1))) == test["tp"]
    assert int(np.sum(flagged & (splits.y_test == 0))) == test["fp"]
    # Second model is a candidate until promoted.
    second = train(csv, epochs=2, seed=2, db=db_url, strategy="baseline")
    assert (second["version"], second["stage"]) == (2, "candidate")


def test_same_seed_same_result_and_compare(csv, home, tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    a = train(csv, epochs=3, seed=7, db=db)
    b = train(csv, epochs=3, seed=7, db=db, compare=True)
    assert a["metrics"] == b["metrics"] and a["threshold"] == b["threshold"]
    assert set(b["compare"]) == {"weighted", "baseline", "oversample"}
    html = open(b["report"]).read()
    assert all(name in html for name in ("weighted", "baseline", "oversample"))


def test_cli_json_and_tampered_artifact_refused(csv, home, tmp_path):
    db = f"sqlite:///{tmp_path / 'c.db'}"
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", "train", "--csv", csv,
                           "--epochs", "8", "--db", db, "--json",
                           "--threshold-policy", "precision:0.5"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"version", "threshold", "metrics", "report"}
    assert out["metrics"]["test"]["auc"] > 0.5
    (home / "models" / str(out["version"]) / "feature_contract.json").write_text("{}")
    with pytest.raises(registry.ArtifactIntegrityError, match="feature_contract.json"):
        load_model(connect(db), out["version"], home=home)
