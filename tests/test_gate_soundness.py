"""The gate cannot be fooled cheaply (pure logic, no broker, no database): too few frauds hold,
the AUPRC gain must clear the margin at its bootstrap lower bound, a condition that cannot fail
is not evaluable, and the slice's label provenance is recorded with warnings — a slice whose
frauds analysts relabelled genuine, against the chargebacks, holds the candidate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from trainer.gate import GateRule, judge, winner
from trainer.gate_evidence import auprc_gain_interval, label_provenance, weighted_auprc


def scores(y: np.ndarray, separation: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(separation * y + rng.normal(0.2, 0.12, len(y)), 0, 1)


def labels(n: int, frauds: int, seed: int = 0) -> np.ndarray:
    y = np.zeros(n, dtype=np.int8)
    y[np.random.default_rng(seed).choice(n, frauds, replace=False)] = 1
    return y


def test_a_slice_with_too_few_frauds_holds_every_candidate():
    y = labels(3000, 12)
    good, weak = scores(y, 0.6, 1), scores(y, 0.2, 2)
    verdict = judge(y, good, weak, candidate_threshold=0.5, production_threshold=0.4)
    assert verdict.status == "held" and not verdict.passed and winner([verdict]) is None
    assert "12 frauds, fewer than the 30 needed" in verdict.reason and verdict.checks == []
    assert verdict.to_dict()["summary"].startswith("held: the slice has 12 frauds")
    # the same candidate on the same slice is judged when the rule asks for fewer frauds
    assert judge(y, good, weak, candidate_threshold=0.5, production_threshold=0.4,
                 rule=GateRule(min_frauds=10)).status == "passed"


def test_the_bootstrap_kernel_is_average_precision():
    y = labels(2000, 50, seed=4)
    p = np.round(scores(y, 0.3, 5), 2)  # ties
    assert weighted_auprc(y, p, np.ones(len(y))) == pytest.approx(
        average_precision_score(y, p), abs=1e-12)
    w = np.where(y == 1, 1.0, 7.0)
    assert weighted_auprc(y, p, w) == pytest.approx(
        average_precision_score(y, p, sample_weight=w), abs=1e-12)


def test_a_gain_within_the_noise_fails_at_the_interval_lower_bound():
    """A candidate a little better on the slice (point gain above the margin) but not surely so:
    the lower bound of the 95 % bootstrap interval is below the margin, so it is rejected — and
    the interval is the same on every run (seeded)."""
    y = labels(4000, 40, seed=7)
    production = scores(y, 0.35, 8)
    candidate = production.copy()
    fraud_rows = np.flatnonzero(y == 1)
    candidate[fraud_rows[:4]] += 0.25  # four frauds ranked higher: a small, fragile gain
    verdict = judge(y, candidate, production, candidate_threshold=0.5,
                    production_threshold=0.5)
    gain = verdict.interval
    assert gain.gain >= 0.01 and gain.lower < 0.01 < gain.upper, gain
    assert [c.status for c in verdict.checks[:2]] == ["passed", "failed"]
    assert verdict.status == "failed" and "auprc_gain_lower_bound" in verdict.summary
    again = auprc_gain_interval(y, candidate, production)
    assert again == gain  # deterministic
    assert auprc_gain_interval(y, candidate, production, seed=1).lower != gain.lower
    # a real improvement clears it
    strong = judge(y, scores(y, 0.8, 9), production, candidate_threshold=0.5,
                   production_threshold=0.5)
    assert strong.passed and strong.interval.lower >= 0.01, strong.reason


def test_a_condition_that_cannot_fail_is_not_evaluable_and_holds():
    """Production flags only rows labelled genuine on the slice (precision 0): every model
    reaches recall 1.0 at "precision >= 0", so the recall check says nothing. Today's gate
    counted it as passed; it is not evaluable, and the candidate is held."""
    y = labels(4000, 80, seed=11)
    candidate = scores(y, 0.7, 12)
    production = scores(y, 0.0, 13)  # no skill
    production[y == 0][:5] = 0.99
    production_threshold = float(np.max(production[y == 1])) + 1e-6  # flags genuine rows only
    verdict = judge(y, candidate, production, candidate_threshold=0.5,
                    production_threshold=production_threshold)
    assert verdict.target_precision == 0.0
    recall = verdict.checks[2]
    assert recall.status == "not evaluable" and "flagging everything" in recall.note
    assert verdict.status == "held" and not verdict.passed and winner([verdict]) is None
    assert "recall_at_production_precision not evaluable" in verdict.reason
    assert verdict.to_dict()["checks"][2]["passed"] is False


def test_label_provenance_shares_and_warnings():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=np.int8)
    sources = ["chargeback", "chargeback", "chargeback", "analyst",
               "analyst", "analyst", "replay", None, None, None]
    contradicted = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    got = label_provenance(y, sources, contradicted)
    assert got.positives == {"chargeback": 3, "analyst": 1}
    assert got.negatives == {"analyst": 2, "replay": 1, "unlabelled": 3}
    assert got.shares()["positives"] == {"chargeback": 0.75, "analyst": 0.25}
    assert got.shares()["negatives"]["unlabelled"] == 0.5
    assert got.analyst_share == pytest.approx(3 / 7)  # of the 7 explicit labels
    assert (got.contradicted, got.contradicted_fraud) == (1, 1)
    assert got.hold  # 1 contradiction > 5 % of 4 frauds
    assert len(got.warnings) == 1 and "1 analyst label(s)" in got.warnings[0]
    assert got.to_dict()["line"].startswith("frauds 75% chargeback, 25% analyst; genuine ")
    dominated = label_provenance(y, ["analyst"] * 10)
    assert not dominated.hold and dominated.contradicted == 0
    assert ["analyst labels dominate" in w for w in dominated.warnings] == [True]
    clean = label_provenance(y, ["chargeback"] * 4 + [None] * 6)
    assert clean.warnings == [] and not clean.hold


def test_poisoned_labels_hold_the_candidate_that_learned_them():
    """Analysts relabel most frauds production catches as genuine, against their chargebacks.
    On those labels a model that misses those frauds looks better than production; the gate
    records the provenance and holds it instead of promoting."""
    rng = np.random.default_rng(21)
    truth = labels(6000, 180, seed=21)
    production = scores(truth, 0.6, 22)
    caught = np.flatnonzero((truth == 1) & (production >= 0.5))
    poisoned = rng.choice(caught, int(0.8 * len(caught)), replace=False)
    y = truth.copy()
    y[poisoned] = 0  # what the label store now says
    candidate = production.copy()
    candidate[poisoned] = 0.01  # the candidate learned the poisoned labels
    sources = ["chargeback" if t else None for t in truth]
    for i in poisoned:
        sources[i] = "analyst"
    contradicted = np.zeros(len(y), dtype=bool)
    contradicted[poisoned] = True
    provenance = label_provenance(y, sources, contradicted)
    verdict = judge(y, candidate, production, candidate_threshold=0.5,
                    production_threshold=0.5, provenance=provenance)
    assert all(c.passed for c in verdict.checks), verdict.reason  # the labels favour it
    assert verdict.status == "held" and "labels in dispute" in verdict.reason
    record = verdict.to_dict()
    assert record["provenance"]["contradicted_fraud"] == len(poisoned)
    assert record["warnings"] and "marking a fraud genuine" in record["warnings"][0]
    assert winner([verdict]) is None
