"""Tests for the synthetic creditcard.csv generator (trainer.synth) and its fitter."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from schemas.errors import FraudstreamError
from schemas.features import CSV_COLUMNS, RAW_FEATURES, V_COLUMNS, FeatureContract
from trainer import fit_synth, synth


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    """20k rows with 5% frauds (1,000): enough frauds for stable class statistics."""
    return synth.generate(20_000, fraud_rate=0.05, seed=11)


def _mixture_mean(mixture: dict, column: int) -> float:
    return float(np.dot(mixture["weights"], np.asarray(mixture["means"])[:, column]))


def test_columns_dtypes_and_counts() -> None:
    frame = synth.generate(1_000, fraud_rate=0.01, seed=1)
    assert list(frame.columns) == list(CSV_COLUMNS)
    assert len(frame) == 1_000
    assert frame["Class"].dtype == np.int64
    assert set(frame["Class"].unique()) <= {0, 1}
    assert int(frame["Class"].sum()) == 10
    assert np.isfinite(frame.drop(columns="Class").to_numpy()).all()


@pytest.mark.parametrize(("rows", "rate", "frauds"), [
    (1, 0.0, 0), (1, 0.5, 1), (10, 0.04, 0), (10, 0.05, 1), (10, 0.06, 1),
    (284_807, synth.DEFAULT_FRAUD_RATE, 493), (5_000, 0.1, 500), (7, 0.99, 7),
])
def test_exact_fraud_count(rows: int, rate: float, frauds: int) -> None:
    frame = synth.generate(rows, fraud_rate=rate, seed=2)
    assert len(frame) == rows
    assert int(frame["Class"].sum()) == frauds


def test_default_fraud_rate_matches_real_file() -> None:
    frame = synth.generate(10_000)
    assert int(frame["Class"].sum()) == round(10_000 * 0.00173)


def test_deterministic_by_seed_and_different_across_seeds() -> None:
    first = synth.generate(2_000, fraud_rate=0.02, seed=5)
    pd.testing.assert_frame_equal(first, synth.generate(2_000, fraud_rate=0.02, seed=5))
    other = synth.generate(2_000, fraud_rate=0.02, seed=6)
    assert not np.allclose(first["V1"].to_numpy(), other["V1"].to_numpy())
    assert not np.array_equal(first["Time"].to_numpy(), other["Time"].to_numpy())


def test_amount_non_negative_cents(mixed: pd.DataFrame) -> None:
    amount = mixed["Amount"].to_numpy()
    assert (amount >= 0).all()
    cents = amount * 100
    assert np.allclose(cents, np.round(cents), atol=1e-6)
    # Realistic marginal: median of tens of currency units, a heavy but bounded tail.
    assert 5 < np.median(amount) < 50
    assert amount.max() < 30_000
    assert (amount == 0).any()


def test_time_sorted_integer_and_in_range(mixed: pd.DataFrame) -> None:
    time = mixed["Time"].to_numpy()
    assert mixed["Time"].dtype == np.float64
    assert (np.diff(time) >= 0).all()
    assert np.array_equal(time, np.floor(time))
    assert time.min() >= 0 and time.max() <= 172_792
    # Spans both days, with the night trough of day 2 (hours 26..30) thinner than its afternoon.
    hours = time // 3600
    assert hours.min() < 2 and hours.max() > 45
    assert ((hours >= 26) & (hours < 30)).sum() < 0.5 * ((hours >= 38) & (hours < 42)).sum()


def test_frauds_not_grouped_at_equal_times(mixed: pd.DataFrame) -> None:
    # Frauds are spread over the whole span, not appended at the end of the file.
    fraud_positions = np.flatnonzero(mixed["Class"].to_numpy() == 1)
    assert fraud_positions.min() < len(mixed) * 0.1 and fraud_positions.max() > len(mixed) * 0.9


@pytest.mark.parametrize("column", ["V4", "V10", "V11", "V12", "V14", "V17"])
def test_class_means_follow_shipped_params(mixed: pd.DataFrame, column: str) -> None:
    params = synth.load_params()
    index = V_COLUMNS.index(column)
    expected = (_mixture_mean(params["classes"]["1"], index)
                - _mixture_mean(params["classes"]["0"], index))
    assert abs(expected) > 2  # these columns separate the classes in the real data
    means = mixed.groupby("Class")[column].mean()
    observed = means[1] - means[0]
    assert np.sign(observed) == np.sign(expected)
    assert abs(observed) > 0.6 * abs(expected)


def test_v14_fraud_mean_strongly_negative(mixed: pd.DataFrame) -> None:
    means = mixed.groupby("Class")["V14"].mean()
    assert means[1] < -4 and abs(means[0]) < 1


def test_logistic_regression_separates_well_but_not_perfectly(mixed: pd.DataFrame) -> None:
    raw = mixed[list(RAW_FEATURES)].to_numpy()
    label = mixed["Class"].to_numpy()
    train = np.arange(len(mixed)) % 3 != 0  # rows are time-sorted; interleave the split
    contract = FeatureContract.fit(raw[train])
    model = LogisticRegression(class_weight="balanced", max_iter=1_000)
    model.fit(contract.transform(raw[train]), label[train])
    scores = model.predict_proba(contract.transform(raw[~train]))[:, 1]
    auc = roc_auc_score(label[~train], scores)
    assert 0.85 < auc < 0.9999


@pytest.mark.parametrize("rows", [0, -1, 1.5, "10", True, None])
def test_bad_rows_raise(rows: object) -> None:
    with pytest.raises(FraudstreamError, match="rows"):
        synth.generate(rows)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [-0.01, 1.0, 1.5, float("nan"), "0.1", None])
def test_bad_fraud_rate_raise(rate: object) -> None:
    with pytest.raises(FraudstreamError, match="fraud_rate"):
        synth.generate(10, fraud_rate=rate)  # type: ignore[arg-type]


def test_write_csv_round_trips(tmp_path) -> None:
    path = synth.write_csv(tmp_path / "synthetic.csv", 3_000, fraud_rate=0.01, seed=9)
    assert path == tmp_path / "synthetic.csv"
    assert path.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    read = pd.read_csv(path)
    expected = synth.generate(3_000, fraud_rate=0.01, seed=9)
    assert list(read.columns) == list(CSV_COLUMNS)
    assert len(read) == 3_000 and int(read["Class"].sum()) == 30
    assert np.array_equal(read["Time"].to_numpy(), expected["Time"].to_numpy())
    assert np.array_equal(read["Class"].to_numpy(), expected["Class"].to_numpy())
    assert np.allclose(read["Amount"].to_numpy(), expected["Amount"].to_numpy(), atol=1e-9)
    v = list(V_COLUMNS)
    assert np.allclose(read[v].to_numpy(), expected[v].to_numpy(), rtol=1e-5, atol=1e-9)


def test_write_csv_missing_directory_and_bad_args(tmp_path) -> None:
    with pytest.raises(FraudstreamError, match="directory"):
        synth.write_csv(tmp_path / "absent" / "x.csv", 10)
    with pytest.raises(FraudstreamError, match="rows"):
        synth.write_csv(tmp_path / "x.csv", 0)
    assert not (tmp_path / "x.csv").exists()


def test_shipped_params_are_small_plain_and_consistent() -> None:
    text = synth.PARAMS_PATH.read_text()
    assert len(text) < 150_000
    assert "/work" not in text and "/home" not in text
    params = json.loads(text)
    assert params["version"] == synth.PARAMS_VERSION
    assert params["source"]["fraud_rows"] > 0 and params["source"]["normal_rows"] > 0
    assert 0 <= params["camouflaged_fraud_share"] < 0.2
    for mixture in params["classes"].values():
        k = len(mixture["weights"])
        assert np.isclose(sum(mixture["weights"]), 1.0, atol=1e-4)
        assert np.asarray(mixture["means"]).shape == (k, 29)
        assert np.asarray(mixture["chol_tril"]).shape == (k, 29 * 30 // 2)
        quantiles = np.asarray(mixture["log_amount_map"]["model_quantiles"])
        assert (np.diff(quantiles) > 0).all()
    assert len(params["time"]["normal_counts"]) == len(params["time"]["fraud_counts"]) == 48


def test_fit_recovers_structure_from_generated_rows(tmp_path) -> None:
    source = synth.write_csv(tmp_path / "in.csv", 6_000, fraud_rate=0.1, seed=3)
    out = tmp_path / "params.json"
    assert fit_synth.main(["--csv", str(source), "--out", str(out),
                           "--normal-components", "2", "--fraud-components", "1"]) == 0
    params = json.loads(out.read_text())
    assert params["source"] == {**params["source"], "rows": 6_000, "normal_rows": 5_400,
                                "fraud_rows": 600}
    assert len(params["classes"]["0"]["weights"]) == 2
    fraud_v14 = _mixture_mean(params["classes"]["1"], V_COLUMNS.index("V14"))
    normal_v14 = _mixture_mean(params["classes"]["0"], V_COLUMNS.index("V14"))
    assert fraud_v14 < -3 < normal_v14
    drawn = synth.sample_mixture(params["classes"]["1"], 500, np.random.default_rng(0))
    assert drawn.shape == (500, 29) and np.isfinite(drawn).all()


def test_fit_rejects_missing_columns_and_file(tmp_path) -> None:
    frame = synth.generate(500, fraud_rate=0.1).drop(columns="V3")
    with pytest.raises(FraudstreamError, match="V3"):
        fit_synth.fit(frame)
    with pytest.raises(FraudstreamError, match="not found"):
        fit_synth.main(["--csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.json")])


def test_synthetic_files_are_marked_and_copies_are_unknown(tmp_path) -> None:
    import shutil

    from schemas.provenance import is_synthetic
    from trainer.synth import write_csv

    path = write_csv(tmp_path / "s.csv", 50, seed=1)
    assert is_synthetic(str(path)) is True
    copy = tmp_path / "copy.csv"
    shutil.copy(path, copy)
    assert is_synthetic(str(copy)) is None  # no marker: the report says "not recorded"
    assert is_synthetic("https://example.invalid/creditcard.csv") is None
