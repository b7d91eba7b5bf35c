"""The feature contract: one vectorised transform, identical row by row, JSON round trip."""

import json

import numpy as np
import pytest

from schemas.events import TransactionV1
from schemas.features import (
    AMOUNT_EPSILON,
    EVENT_FEATURES,
    MODEL_FEATURES,
    FeatureContract,
    raw_matrix_from_events,
)


def raw(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(n, 29))
    x[:, -1] = rng.lognormal(3, 1.5, size=n).round(2)  # Amount
    x[0, -1] = 0.0
    return x


def test_batch_equals_row_by_row():
    contract = FeatureContract.fit(raw(500, seed=1))
    batch = raw(300, seed=2) * 3  # some values far out, so clipping is exercised
    together = contract.transform(batch)
    one_by_one = np.vstack([contract.transform(batch[i : i + 1]) for i in range(len(batch))])
    assert together.dtype == np.float32 and together.shape == (300, 29)
    np.testing.assert_array_equal(together, one_by_one)


def test_fit_uses_log_amount_and_population_std():
    train = raw(1000)
    contract = FeatureContract.fit(train)
    logged = np.log(train[:, -1] + AMOUNT_EPSILON)
    assert contract.mean[-1] == pytest.approx(logged.mean())
    assert contract.scale[-1] == pytest.approx(logged.std(ddof=0))
    assert contract.mean[0] == pytest.approx(train[:, 0].mean())
    out = contract.transform(train)
    assert np.abs(out[:, :28].mean(axis=0)).max() < 0.05  # only clipping moves the mean


def test_clip_to_five():
    contract = FeatureContract(mean=(0.0,) * 29, scale=(1.0,) * 29)
    x = np.zeros((2, 29))
    x[0, 0], x[1, 0] = 100.0, -100.0
    x[:, -1] = 1e9  # log(1e9) ≈ 20.7 → clipped
    out = contract.transform(x)
    assert out[0, 0] == 5.0 and out[1, 0] == -5.0 and out[0, -1] == 5.0


def test_json_round_trip_is_plain_numbers(tmp_path):
    contract = FeatureContract.fit(raw(200))
    path = tmp_path / "fc.json"
    contract.save(path)
    data = json.loads(path.read_text())
    assert data["features"] == list(MODEL_FEATURES)
    assert all(isinstance(v, float) for v in data["mean"] + data["scale"])
    assert FeatureContract.load(path) == contract


def test_rejects_wrong_width_and_foreign_contract():
    contract = FeatureContract.fit(raw(50))
    with pytest.raises(ValueError, match="shape"):
        contract.transform(np.zeros((3, 28)))
    bad = {**contract.to_dict(), "features": ["x"] * 29}
    with pytest.raises(ValueError, match="columns"):
        FeatureContract.from_dict(bad)


def test_events_to_raw_matrix_in_contract_order():
    values = {name: float(i) for i, name in enumerate(EVENT_FEATURES)}
    event = TransactionV1(schema_version=1, transaction_id="t-1", time_s=0.0, **values)
    matrix = raw_matrix_from_events([event.model_dump(), values])
    assert matrix.shape == (2, 29)
    np.testing.assert_array_equal(matrix[0], np.arange(29, dtype=float))
