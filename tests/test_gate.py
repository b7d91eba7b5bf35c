"""The promotion gate and the out-of-time split, as pure functions (no broker, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation import recall_at_precision
from schemas.errors import FraudstreamError
from trainer import oot
from trainer.data import Dataset
from trainer.gate import GateRule, judge, winner


def slice_(n: int = 4000, frauds: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int8)
    y[rng.choice(n, frauds, replace=False)] = 1
    good = np.clip(0.6 * y + rng.normal(0.2, 0.12, n), 0, 1)  # separates well
    weak = np.clip(0.25 * y + rng.normal(0.2, 0.12, n), 0, 1)  # separates less
    return y, good, weak


def test_gate_promotes_a_better_candidate():
    y, good, weak = slice_()
    verdict = judge(y, good, weak, candidate_threshold=0.5, production_threshold=0.4)
    assert verdict.passed, verdict.reason
    assert verdict.candidate["prc"] >= verdict.production["prc"] + 0.01
    assert [c.name for c in verdict.checks] == [
        "auprc", "auprc_gain_lower_bound", "recall_at_production_precision"]
    assert verdict.interval.lower >= 0.01 and verdict.status == "passed"
    assert verdict.reason.startswith("passed")
    assert winner([verdict]) == 0


def test_gate_rejects_a_worse_or_equal_candidate():
    y, good, weak = slice_()
    worse = judge(y, weak, good, candidate_threshold=0.4, production_threshold=0.5)
    assert not worse.passed and worse.reason.startswith("failed")
    same = judge(y, good, good, candidate_threshold=0.5, production_threshold=0.5)
    assert not same.passed  # equal AUPRC is not +0.01
    assert [c.passed for c in same.checks] == [False, False, True]
    assert same.status == "failed" and same.interval.gain == pytest.approx(0.0)
    assert winner([worse, same]) is None


def test_recall_check_alone_can_reject():
    y, good, weak = slice_()
    lenient = GateRule(min_auprc_gain=-1.0)  # any AUPRC passes: only the recall check is left
    verdict = judge(y, weak, good, candidate_threshold=0.4, production_threshold=0.5, rule=lenient)
    assert [c.passed for c in verdict.checks] == [True, True, False]
    target = verdict.target_precision
    assert verdict.checks[2].value == pytest.approx(recall_at_precision(y, weak, target))
    assert verdict.checks[2].required == pytest.approx(recall_at_precision(y, good, target))
    assert not verdict.passed
    assert judge(
        y, weak, good, candidate_threshold=0.4, production_threshold=0.5, rule=GateRule(-1.0, 1.0)
    ).passed  # a recall drop of up to 1 allowed


def test_winner_is_the_passing_candidate_with_the_best_auprc():
    y, good, weak = slice_()
    worst = np.random.default_rng(1).random(len(y))
    verdicts = [
        judge(y, p, worst, candidate_threshold=0.5, production_threshold=0.9)
        for p in (weak, good, worst)
    ]
    assert [v.passed for v in verdicts] == [True, True, False]
    assert winner(verdicts) == 1


def test_one_class_slice_and_bad_rules():
    y = np.zeros(100, dtype=np.int8)
    p = np.linspace(0, 1, 100)
    verdict = judge(y, p, p, candidate_threshold=0.5, production_threshold=0.5)
    assert not verdict.passed and "one class" in verdict.reason
    with pytest.raises(FraudstreamError, match="min_auprc_gain"):
        GateRule(min_auprc_gain=float("nan"))
    text = GateRule(0.02, 0.05).describe()
    assert "+0.0200" in text and "-0.0500" in text and "at least 30 frauds" in text
    assert "95% bootstrap interval" in text


def dataset(n: int = 1000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    time = rng.permutation(np.repeat(np.arange(n // 4, dtype=np.float64), 4))  # ties, shuffled
    y = (rng.random(n) < 0.1).astype(np.int8)
    return Dataset(raw=rng.normal(size=(n, 29)), y=y, time=time, sha256="x", source="t")


def test_out_of_time_split_never_trains_on_later_events_than_it_tests():
    data = dataset()
    split = oot.out_of_time_split(data, val_fraction=0.15, test_fraction=0.25)
    t = {k: data.time[i] for k, i in split.index.items()}
    assert t["train"].max() <= t["val"].min() and t["val"].max() <= t["test"].min()
    assert [len(i) for i in split.index.values()] == [600, 150, 250]
    assert sorted(np.concatenate(list(split.index.values()))) == list(range(1000))
    np.testing.assert_array_equal(split.splits.y_test, data.y[split.index["test"]])
    np.testing.assert_array_equal(split.splits.train_raw, data.raw[split.index["train"]])
    assert split.info["test"].last_time_s == data.time.max()
    assert split.info["train"].frauds == int(data.y[split.index["train"]].sum())


@pytest.mark.parametrize(
    ("val", "test", "match"),
    [
        (0.0, 0.2, "--val-fraction"),
        (0.2, 1.0, "--test-fraction"),
        (0.5, 0.5, "nothing to train"),
    ],
)
def test_out_of_time_split_refuses_bad_fractions(val, test, match):
    with pytest.raises(FraudstreamError, match=match):
        oot.out_of_time_split(dataset(), val_fraction=val, test_fraction=test)


def test_out_of_time_split_needs_both_classes_to_train():
    data = dataset()
    no_fraud = Dataset(data.raw, np.zeros_like(data.y), data.time, "x", "t")
    with pytest.raises(FraudstreamError, match="train split .* needs frauds and genuine"):
        oot.out_of_time_split(no_fraud)


def test_assemble_labels_matures_and_leaves_out():
    ids = ["a", "b", "c", "d", "e", "b"]  # "b" delivered twice: the first event is kept
    time = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 99.0])
    raw = np.arange(6 * 29, dtype=np.float64).reshape(6, 29)
    truth = {"a": 1, "d": 0, "e": 1, "zzz": 1}
    got = oot.assemble(ids, time, raw, truth, mature_until_s=60.0, source="s")
    assert list(got.ids) == ["a", "b", "c", "d", "e"]
    assert got.counts == oot.LabelCounts(
        events=5, fraud=2, genuine=1, matured=2, left_out=0, duplicates=1
    )
    np.testing.assert_array_equal(got.dataset.y, [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(got.dataset.raw, raw[:5])
    late = oot.assemble(ids, time, raw, truth, mature_until_s=35.0, source="s")
    # d (40 s, labelled genuine) and e (50 s, labelled fraud) are too recent: left out although
    # labelled, so the recent slice is not enriched with early labels
    assert list(late.ids) == ["a", "b", "c"]
    assert late.counts == oot.LabelCounts(
        events=5, fraud=1, genuine=0, matured=2, left_out=2, duplicates=1
    )
    np.testing.assert_array_equal(late.dataset.time, [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(late.dataset.y, [1, 0, 0])
    assert late.dataset.sha256 != got.dataset.sha256


def test_window_mask():
    t = np.array([0.0, 5.0, 10.0])
    np.testing.assert_array_equal(oot.window_mask(t, 5.0, 10.0), [False, True, False])
    np.testing.assert_array_equal(oot.window_mask(t, None, None), [True, True, True])


def test_negative_weight_gives_the_population_precision():
    """Genuine rows subsampled 1 in 10: weighting them by 10 restores the population's
    precision and AUPRC, exactly as if every genuine row were there ten times."""
    y, good, weak = slice_(n=2000, frauds=60, seed=3)
    repeated_y = np.concatenate([y[y == 1], np.repeat(y[y == 0], 10)])
    repeated_p = np.concatenate([good[y == 1], np.repeat(good[y == 0], 10)])
    from trainer.gate import figures

    weighted = figures(y, good, 0.45, target_precision=0.5, neg_weight=10.0)
    full = figures(repeated_y, repeated_p, 0.45, target_precision=0.5)
    for key in ("prc", "precision", "recall", "recall_at_target"):
        assert weighted[key] == pytest.approx(full[key], abs=1e-9), key
    assert weighted["precision"] < figures(y, good, 0.45)["precision"]
    assert weighted["tp"] == figures(y, good, 0.45)["tp"]  # counts stay the slice's own
    rule = GateRule(negative_weight=10.0)
    assert "weighted x10" in rule.describe()
    verdict = judge(y, good, weak, candidate_threshold=0.5, production_threshold=0.4, rule=rule)
    assert verdict.production["precision"] == pytest.approx(
        figures(y, weak, 0.4, neg_weight=10.0)["precision"])
    with pytest.raises(FraudstreamError, match="negative_weight must be a number > 0"):
        GateRule(negative_weight=0.0)
