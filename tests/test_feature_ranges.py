"""ULB (v1) explanations an analyst can check: readable feature names, the values the model saw
(stored with the alert by the scorer) and the model's training-set ranges (recorded by the
trainer from the train rows only, hashed with the artifacts), on the desk's API and page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from desk.app import create_app
from desk.auth import LoginLimiter
from desk.explain import where_in_range
from models.dense import DenseScorer
from schemas.features import EVENT_FEATURES, RANGES_FILE, FeatureContract, feature_ranges
from scorer.decode import decode_batch
from scorer.process import ScoringModel, score_batch
from scorer.sink import write_batch
from store import registry
from store.db import connect
from tests.desk_fixtures import (
    SECRET,
    add_users,
    cheap_hashes,  # noqa: F401  (autouse)
    client_for,
    seed,
)
from trainer.data import Splits
from trainer.pipeline import save_artifacts, train_one


def test_feature_titles_and_where_a_value_lies():
    ranges = feature_ranges(np.arange(29 * 101, dtype=np.float64).reshape(101, 29))
    v8 = ranges["features"]["v8"]
    assert (v8["min"], v8["p01"], v8["p99"], v8["max"]) == (7.0, 36.0, 2878.0, 2907.0)
    assert [where_in_range(x, v8) for x in (0.0, 20.0, 100.0, 2900.0, 5000.0, None)] == [
        "outside", "rare", "typical", "rare", "outside", None]
    with pytest.raises(ValueError, match="train rows"):
        feature_ranges(np.zeros((0, 29)))


def test_trainer_records_ranges_from_the_train_rows_only(tmp_path):
    rng = np.random.default_rng(3)
    train_raw = rng.normal(size=(1500, 29))
    train_raw[:, -1] = rng.uniform(0, 200, size=1500)  # amount
    held_out = rng.normal(size=(400, 29))
    held_out[:, -1] = rng.uniform(0, 200, size=400)
    held_out[:7, :] = 1e4  # far outside the train rows: must not widen the recorded ranges
    held_out[7:14, :-1] = -1e4
    # separable (fraud iff V1 > 1.5), so the booster's early stopping ends the fit in a few rounds
    y_train = (train_raw[:, 0] > 1.5).astype(np.int8)
    y_held = (held_out[:, 0] > 1.5).astype(np.int8)
    splits = Splits(train_raw, y_train, held_out[:200], y_held[:200], held_out[200:],
                    y_held[200:])
    run = train_one(splits, "weighted", epochs=1, seed=1, family="xgboost")
    assert run.ranges == feature_ranges(train_raw)
    v1, amount = run.ranges["features"]["v1"], run.ranges["features"]["amount"]
    assert v1["max"] == train_raw[:, 0].max() < 10 and v1["min"] == train_raw[:, 0].min() > -10
    assert amount["max"] <= 200 and amount["p99"] == pytest.approx(
        np.quantile(train_raw[:, -1], 0.99))
    assert run.ranges["rows"] == 1500 and set(run.ranges["features"]) == set(EVENT_FEATURES)
    save_artifacts(run, tmp_path)
    assert json.loads((tmp_path / RANGES_FILE).read_text()) == run.ranges


def event(i: int, v1: float) -> dict:
    return {"schema_version": 1, "transaction_id": f"t-{i}", "time_s": 60.0 * i,
            **{f"v{k}": 0.01 * k for k in range(1, 29)}, "v1": v1, "amount": 10.0 + i}


class Record:
    def __init__(self, value: bytes, offset: int) -> None:
        self.value, self.offset, self.topic, self.partition, self.key = value, offset, "tx", 0, None


def test_alert_page_shows_names_values_and_ranges(db_url, home, tmp_path):
    engine = connect(db_url)
    seed(engine, n_alerts=3, n_genuine=0)  # model 1: no ranges; its alerts: no values
    train_raw = np.random.default_rng(0).normal(size=(500, 29))
    train_raw[:, -1] = np.abs(train_raw[:, -1]) * 50
    ranges = feature_ranges(train_raw)
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / RANGES_FILE).write_text(json.dumps(ranges))
    record = registry.register(engine, staging, strategy="weighted", threshold=0.5,
                               threshold_policy="max-f1", metrics={}, data_sha256="0" * 64,
                               home=home, feature_ranges=ranges)
    manifest = json.loads((home / record.artifact_dir / "manifest.json").read_text())
    assert RANGES_FILE in manifest["files"]  # hashed as every artifact is
    # One hidden unit relu(V1 + 0.01 log amount): flags V1 > ~0.48; V1, then amount, explain it.
    k1 = np.zeros((29, 1))
    k1[0, 0], k1[28, 0] = 1.0, 0.01
    net = DenseScorer(kernels=(k1, np.array([[10.0]])), biases=(np.zeros(1), np.array([-5.0])))
    model = ScoringModel(version=record.version, threshold=0.5, net=net,
                         contract=FeatureContract(mean=(0.0,) * 29, scale=(1.0,) * 29))
    records = [Record(json.dumps(event(i, v)).encode(), i) for i, v in enumerate((2.5, -1.0, 9.0))]
    scored = score_batch(decode_batch(records), model, now=datetime(2024, 1, 1, tzinfo=UTC))
    with engine.begin() as conn:
        write_batch(conn, scored)
    assert [a.transaction_id for a in scored.alerts] == ["t-0", "t-2"]

    app = create_app(engine, secret=SECRET, limiter=LoginLimiter())
    c = client_for(app, add_users(engine), "vera")
    got = c.get(f"/api/alerts/{record.version}/t-0").json()["alert"]
    first = got["features"][0]
    assert first["feature"] == "v1" and first["title"] == "V1 (anonymised PCA component 1)"
    assert first["value"] == 2.5 and first["contribution"] > 0
    assert first["range"] == ranges["features"]["v1"] and first["where"] == "rare"
    by_name = {f["feature"]: f for f in got["features"]}
    assert by_name["amount"]["title"] == "amount (the model sees its log)"
    assert by_name["amount"]["value"] == 10.0
    assert got["feature_values"] == {f["feature"]: f["value"] for f in got["features"]}
    assert c.get(f"/api/alerts/{record.version}/t-2").json()["alert"]["features"][0][
        "where"] == "outside"  # 9.0 is beyond every train row's V1

    page = c.get(f"/alerts/{record.version}/t-0").text
    row = re.search(r'<tr class="feature">.*?</tr>', page, re.S)
    assert row, page[:2000]
    cells = re.sub(r"<[^>]+>", " ", row.group(0))
    span = ranges["features"]["v1"]
    assert "V1 (anonymised PCA component 1)" in cells and "2.500" in cells
    assert f"{span['p01']:,.2f} to {span['p99']:,.2f}" in cells
    assert f"{span['min']:,.2f}" in cells and f"{span['max']:,.2f}" in cells
    assert "in the outer 1 %" in cells and f"{first['contribution']:+.3f}" in cells
    assert "range not recorded" not in page

    old = c.get("/api/alerts/1/tx-0001").json()["alert"]["features"]  # before this change
    assert old[0]["title"] == "V14 (anonymised PCA component 14)"
    assert old[0]["value"] is None and old[0]["range"] is None
    old_page = c.get("/alerts/1/tx-0001")
    assert old_page.status_code == 200
    assert "range not recorded" in old_page.text and "not recorded" in old_page.text
    engine.dispose()
