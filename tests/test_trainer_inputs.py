"""Trainer inputs and pure evaluation logic: bad CSVs, threshold policies, metrics."""

import subprocess
import sys

import numpy as np
import pytest

from models.evaluation import confusion, evaluate
from schemas.errors import FraudstreamError
from schemas.features import CSV_COLUMNS
from trainer.data import load_csv, split
from trainer.model import class_weights, initial_bias
from trainer.threshold import choose_threshold, parse_policy


def write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return str(path)


def good_rows(n=40, frauds=4):
    rng = np.random.default_rng(0)
    return [[i, *rng.normal(size=28).round(4), 12.5, int(i < frauds)] for i in range(n)]


def test_load_good_csv(tmp_path):
    data = load_csv(write(tmp_path / "ok.csv", CSV_COLUMNS, good_rows()))
    assert data.raw.shape == (40, 29) and data.y.sum() == 4 and len(data.sha256) == 64
    assert data.raw[0, -1] == 12.5  # Amount last, Time dropped


@pytest.mark.parametrize("case,match", [
    ("missing_file", "not found"),
    ("empty", "empty"),
    ("header_only", "no rows"),
    ("missing_column", "lacks column.*V7"),
    ("text_in_numeric", "column V3 .*line 4"),
    ("single_class", "only class 0"),
    ("negative_amount", "negative Amount on line 2"),
    ("bad_label", "Class must be 0 or 1"),
])
def test_bad_inputs_give_clear_errors(tmp_path, case, match):
    path = tmp_path / f"{case}.csv"
    rows = good_rows()
    header = list(CSV_COLUMNS)
    if case == "missing_file":
        source = str(tmp_path / "nope.csv")
    elif case == "empty":
        path.write_text("")
        source = str(path)
    elif case == "header_only":
        source = write(path, header, [])
    elif case == "missing_column":
        source = write(path, [c for c in header if c != "V7"], [r[:7] + r[8:] for r in rows])
    elif case == "text_in_numeric":
        rows[2][3] = "abc"
        source = write(path, header, rows)
    elif case == "single_class":
        source = write(path, header, [r[:-1] + [0] for r in rows])
    elif case == "negative_amount":
        rows[0][-2] = -1
        source = write(path, header, rows)
    else:
        rows[5][-1] = 2
        source = write(path, header, rows)
    with pytest.raises(FraudstreamError, match=match):
        load_csv(source)


def test_cli_bad_input_is_one_line_and_non_zero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", "train", "--csv",
                           str(tmp_path / "missing.csv")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"fraudstream train: error: CSV file not found: {tmp_path / 'missing.csv'}"]


def test_stratified_split_keeps_fraud_share_and_is_seeded(tmp_path):
    data = load_csv(write(tmp_path / "ok.csv", CSV_COLUMNS, good_rows(500, 50)))
    a, b = split(data, seed=3), split(data, seed=3)
    assert len(a.y_train) == 320 and len(a.y_val) == 80 and len(a.y_test) == 100
    assert (a.y_train.sum(), a.y_val.sum(), a.y_test.sum()) == (32, 8, 10)
    np.testing.assert_array_equal(a.train_raw, b.train_raw)
    assert not np.array_equal(a.train_raw, split(data, seed=4).train_raw)


def test_threshold_policies():
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert choose_threshold(y, p, "fixed:0.5") == 0.5
    assert choose_threshold(y, p, "max-f1") == 0.5  # tp=3, fp=1: F1 = 0.857
    assert choose_threshold(y, p, "precision:1.0") == 0.7  # lowest threshold with no fp
    assert choose_threshold(y, p, "recall:1.0") == 0.5  # highest threshold keeping all frauds
    assert choose_threshold(y, p, "recall:0.6") == 0.7
    for bad in ("max-f2", "precision:2", "recall:", "fixed:x"):
        with pytest.raises(FraudstreamError, match="threshold policy"):
            parse_policy(bad)


def test_metrics_and_tutorial_weights():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    assert confusion(y, p, 0.5) == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    m = evaluate(y, p, 0.5)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["accuracy"] == 0.5
    assert m["auc"] == 0.75
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.01) / 4)
    labels = np.array([0] * 98 + [1] * 2)
    assert class_weights(labels) == pytest.approx({0: 100 / 196, 1: 25.0})
    assert initial_bias(labels) == pytest.approx(np.log(2 / 98))


# -- threshold policies for ops: analyst capacity and expected cost -----------------------------
def test_alerts_per_day_policy_respects_capacity():
    from trainer.threshold import alerts_per_day_threshold, events_per_day

    assert events_per_day(np.array([0.0, 43_200.0, 86_400.0 * 2])) == 1.5
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    # 1000 events a day, 10 validation rows: 300 alerts/day = 3 rows flagged
    assert alerts_per_day_threshold(p, 300, 1000) == 0.7
    assert choose_threshold(np.zeros(10), p, "alerts-per-day:300", per_day=1000) == 0.7
    assert alerts_per_day_threshold(p, 299, 1000) == 0.8  # 2.99 rows: two
    assert alerts_per_day_threshold(p, 50, 1000) > 0.9  # not even one: none flagged
    assert alerts_per_day_threshold(p, 5000, 1000) == 0.05  # capacity for all
    tied = np.array([0.9, 0.7, 0.7, 0.1])
    t = alerts_per_day_threshold(tied, 500, 1000)  # 2 rows allowed, but 0.7 would flag 3
    assert 0.7 < t <= 0.9 and int(np.sum(tied >= t)) == 1
    with pytest.raises(FraudstreamError, match="event rate"):
        choose_threshold(np.zeros(10), p, "alerts-per-day:300")


def test_cost_policy_minimises_missed_amounts_plus_review_cost():
    from trainer.threshold import cost_threshold

    y = np.array([1, 0, 1, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    amounts = np.array([100.0, 5.0, 30.0, 5.0, 5.0, 2.0])

    def cost(t, c):
        flagged = p >= t
        return float(amounts[(y == 1) & ~flagged].sum() + c * flagged.sum())

    for c in (0.0, 1.0, 10.0, 20.0, 200.0):
        t = cost_threshold(y, p, amounts, c)
        best = min(cost(x, c) for x in [*p, 1.01])
        assert cost(t, c) == best, c
    assert cost_threshold(y, p, amounts, 10.0) == 0.7  # catch 100 and 30 for 3 alerts: 30+2
    assert cost_threshold(y, p, amounts, 200.0) > 0.9  # reviews cost more than any fraud
    assert choose_threshold(y, p, "cost:review=10", amounts=amounts) == 0.7
    with pytest.raises(FraudstreamError, match="amounts"):
        choose_threshold(y, p, "cost:review=10")


@pytest.mark.parametrize("bad", ["alerts-per-day:", "alerts-per-day:-1", "cost:10",
                                 "cost:review=x", "cost:review=-2", "alerts-per-day:inf"])
def test_ops_policies_refuse_bad_values(bad):
    with pytest.raises(FraudstreamError, match="bad threshold policy"):
        parse_policy(bad)
    assert parse_policy("alerts-per-day:40") == ("alerts-per-day", 40.0)
    assert parse_policy("cost:review=2.5") == ("cost", 2.5)
