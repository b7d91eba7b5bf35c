"""``models list`` says which data each test figure is from and shows the gate's same-slice
comparison: test AUCs of different test sets side by side mislead (real SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import fraudstream_cli
from store import registry
from store.db import connect


def _register(engine, tmp_path, name: str, auc: float, training: dict) -> int:
    staging = tmp_path / name
    staging.mkdir()
    (staging / "weights.json").write_text("{}")
    metrics = {"test": {"threshold": {"auc": auc, "prc": auc - 0.2, "tp": 40, "fn": 10,
                                      "fp": 5, "tn": 56_000}}}
    return registry.register(engine, staging, strategy="weighted", threshold=0.9,
                             threshold_policy="max-f1", metrics=metrics, data_sha256="0" * 64,
                             training=training).version


def test_models_list_names_each_test_set_and_the_gates_same_slice(db_url, home, tmp_path,
                                                                    capsys):
    engine = connect(db_url)
    v1 = _register(engine, tmp_path, "v1", 0.998, {
        "source": "csv", "csv": "/somewhere/train.csv", "split": "stratified",
        "rows": 280_000, "frauds": 250})
    test_slice = {"rows": 20_000, "frauds": 31, "first_time_s": 0.0, "last_time_s": 1.0,
                  "start": "2013-09-02T14:00:00+00:00", "end": "2013-09-02T23:59:00+00:00"}
    v2 = _register(engine, tmp_path, "v2", 0.913, {
        "source": "stream", "topic": "transactions", "rows": 80_000, "frauds": 120,
        "split": {"kind": "out-of-time", "test": test_slice}})
    registry.promote(engine, v2, decided_by="gate", rule="r", comparison={
        "slice": {"split": "test", **test_slice}, "production_version": v1,
        "candidate": {"auc": 0.913, "prc": 0.702}, "production": {"auc": 0.871, "prc": 0.655},
        "reason": "passed"})

    assert fraudstream_cli.main(["models", "list", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "not comparable" in out
    assert ("test AUC 0.9980 on its own test split: a stratified random 56,055-row share of "
            "train.csv (50 frauds)") in out
    assert ("test AUC 0.9130 on its own test split: the most recent 20,000 rows of topic "
            "transactions (events 2013-09-02T14:00 .. 2013-09-02T23:59, 31 frauds)") in out
    assert (f"gate, same slice (events 2013-09-02T14:00 .. 2013-09-02T23:59, 20,000 rows, 31 "
            f"frauds): v{v2} AUC 0.9130 AUPRC 0.7020 vs production v{v1} AUC 0.8710 AUPRC "
            "0.6550 -> promoted") in out

    assert fraudstream_cli.main(["models", "list", "--json", "--db", db_url]) == 0
    listed = {m["version"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[v1]["test_set"]["kind"] == "stratified" and listed[v1]["gate_same_slice"] is None
    assert listed[v2]["test_set"]["rows"] == 20_000
    gate = listed[v2]["gate_same_slice"]
    assert (gate["production_version"], gate["production"]["auc"]) == (v1, 0.871)
    assert fraudstream_cli.main(["models", "show", str(v2), "--db", db_url]) == 0
    assert "test data: its own test split: the most recent 20,000 rows" in capsys.readouterr().out
    engine.dispose()
