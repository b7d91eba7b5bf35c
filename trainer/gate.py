"""The promotion gate (pure): a candidate against the production model on the same most recent
labelled slice (the out-of-time test split of a retraining round).

The rule (:class:`GateRule`, printed by :meth:`GateRule.describe`) promotes only on evidence:

* **enough frauds**: a slice with fewer than ``min_frauds`` frauds (or one class only) judges
  nothing — the verdict is ``held``, with the reason;
* **AUPRC**: the candidate's area under the precision-recall curve (average precision) is at least
  production's plus ``min_auprc_gain`` (default +0.01), *and* so is the lower bound of the
  bootstrap interval of the gain (:func:`trainer.gate_evidence.auprc_gain_interval`, 95 %,
  seeded): a gain the slice cannot tell from noise does not promote;
* **recall at production's precision**: take the precision production reaches at its own
  threshold on the slice; the candidate's best recall at that precision or better is not lower
  than production's best recall there, minus ``max_recall_drop`` (default 0). When that
  precision is no more than the slice's fraud rate, flagging everything reaches it and every
  model has recall 1.0: the check cannot fail, so it is *not evaluable* and the verdict is
  ``held`` (a condition that cannot fail is never counted as passed);
* **labels**: the slice's label provenance (:func:`trainer.gate_evidence.label_provenance`) is
  recorded with warnings; when analysts' verdicts overriding chargebacks or replayed truth exceed
  ``max_contradicted_share`` of the slice's frauds, the verdict is ``held``.

A verdict's ``status`` is ``passed`` (every check passed), ``failed`` (a check that can fail did)
or ``held`` (nothing failed, but the gate cannot vouch for the candidate). Inputs are labels
``y`` ``(n,)`` 0/1 and scores ``(n,)`` in [0, 1] of the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from models.evaluation import evaluate, recall_at_precision, reweighted
from schemas.errors import FraudstreamError
from trainer.gate_evidence import GainInterval, Provenance, auprc_gain_interval

DEFAULT_MIN_AUPRC_GAIN = 0.01
DEFAULT_MAX_RECALL_DROP = 0.0
DEFAULT_MIN_FRAUDS = 30
DEFAULT_CONFIDENCE = 0.95

Status = Literal["passed", "failed", "not evaluable"]


@dataclass(frozen=True)
class GateRule:
    """When a candidate beats production (see the module docstring)."""

    min_auprc_gain: float = DEFAULT_MIN_AUPRC_GAIN
    max_recall_drop: float = DEFAULT_MAX_RECALL_DROP
    # Weight of each genuine row in AUPRC and precision (``--negative-weight``): > 1 when the
    # slice's genuine rows are a subsample, so the figures are the population's.
    negative_weight: float = 1.0
    min_frauds: int = DEFAULT_MIN_FRAUDS  # frauds the slice needs before it judges anything
    confidence: float = DEFAULT_CONFIDENCE  # of the bootstrap interval of the AUPRC gain
    resamples: int = 1000
    seed: int = 0  # of the bootstrap: the same slice and scores give the same verdict
    max_contradicted_share: float = 0.05  # analyst labels overriding independent truth
    max_analyst_share: float = 0.5  # of the slice's explicit labels, before a warning

    def __post_init__(self) -> None:
        for name in ("min_auprc_gain", "max_recall_drop"):
            value = getattr(self, name)
            if not math.isfinite(value) or not -1.0 <= value <= 1.0:
                raise FraudstreamError(
                    f"gate rule: {name} must be a number in [-1, 1], not {value}"
                )
        if not math.isfinite(self.negative_weight) or self.negative_weight <= 0:
            raise FraudstreamError(
                f"gate rule: negative_weight must be a number > 0, not {self.negative_weight}"
            )
        if not 1 <= self.min_frauds <= 1_000_000:
            raise FraudstreamError(f"gate rule: min_frauds must be >= 1, not {self.min_frauds}")
        if not 0.5 <= self.confidence < 1.0:
            raise FraudstreamError(
                f"gate rule: confidence must be in [0.5, 1), not {self.confidence}")
        if not 100 <= self.resamples <= 100_000:
            raise FraudstreamError(
                f"gate rule: resamples must be in [100, 100000], not {self.resamples}")
        for name in ("max_contradicted_share", "max_analyst_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FraudstreamError(f"gate rule: {name} must be in [0, 1]")

    def describe(self) -> str:
        """The rule in words, as printed and recorded with every decision."""
        return (
            f"at least {self.min_frauds} frauds in the slice; candidate AUPRC >= production "
            f"AUPRC {self.min_auprc_gain:+.4f}, also at the lower bound of the "
            f"{self.confidence:.0%} bootstrap interval of the gain ({self.resamples} resamples, "
            f"seed {self.seed}); candidate recall at production's precision >= production's "
            f"{-self.max_recall_drop:+.4f} (not evaluable, so held, when that precision is no "
            f"more than the slice's fraud rate); held when analyst labels overriding chargebacks "
            f"or replayed truth exceed {self.max_contradicted_share:.0%} of the slice's frauds "
            f"(same most recent labelled slice"
            + (f"; genuine rows weighted x{self.negative_weight:.4g} in AUPRC and precision)"
               if self.negative_weight != 1.0 else ")")
        )


@dataclass(frozen=True)
class Check:
    name: str
    value: float  # the candidate's figure
    required: float  # what the rule asks of it
    status: Status
    note: str = ""  # why it is not evaluable

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def text(self) -> str:
        if self.status == "not evaluable":
            return f"{self.name} not evaluable ({self.note})"
        return f"{self.name} {self.value:.4f} {'>=' if self.passed else '<'} {self.required:.4f}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of one candidate: both models' figures on the slice, the checks,
    the bootstrap interval of the AUPRC gain and the labels' provenance. ``status``: passed,
    failed or held (module docstring); ``reason`` says why in one line."""

    candidate: dict[str, float]
    production: dict[str, float]
    target_precision: float  # production's precision at its threshold on the slice
    checks: list[Check]
    reason: str
    status: Literal["passed", "failed", "held"] = "held"
    frauds: int = 0  # in the slice
    interval: GainInterval | None = None
    provenance: Provenance | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def warnings(self) -> list[str]:
        return list(self.provenance.warnings) if self.provenance else []

    @property
    def summary(self) -> str:
        """The reason, short (``models list``): why held, the first failed check, or the gain."""
        if self.status == "failed":
            return "failed: " + next(c.text() for c in self.checks if c.status == "failed")
        if self.status == "held":
            return self.reason.split("; ")[0]
        gain = self.interval
        return "passed" if gain is None else (
            f"passed: AUPRC gain {gain.gain:+.4f} ({gain.confidence:.0%} interval "
            f"{gain.lower:+.4f} .. {gain.upper:+.4f})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "status": self.status,
            "reason": self.reason,
            "summary": self.summary,
            "frauds": self.frauds,
            "candidate": self.candidate,
            "production": self.production,
            "target_precision": self.target_precision,
            "checks": [c.to_dict() for c in self.checks],
            "auprc_gain_interval": self.interval.to_dict() if self.interval else None,
            "provenance": self.provenance.to_dict() if self.provenance else None,
            "warnings": self.warnings,
        }


def figures(
    y: np.ndarray, p: np.ndarray, threshold: float, target_precision: float | None = None,
    neg_weight: float = 1.0,
) -> dict[str, float]:
    """A model's figures on the slice: AUPRC (``prc``), ROC-AUC (``auc``), precision, recall
    and tp/fp/fn at ``threshold``; with ``target_precision`` also ``recall_at_target``. With
    ``neg_weight`` != 1, AUPRC and precision weight each genuine row by it (the counts stay
    the slice's own)."""
    m = evaluate(y, p, threshold)
    out = {k: float(m[k]) for k in ("prc", "auc", "precision", "recall", "tp", "fp", "fn")}
    if neg_weight != 1.0:
        out |= reweighted(y, p, threshold, neg_weight)
    out["threshold"] = float(threshold)
    if target_precision is not None:
        out["recall_at_target"] = recall_at_precision(y, p, target_precision, neg_weight)
    return out


def _check(name: str, value: float, required: float) -> Check:
    return Check(name, value, required, "passed" if value >= required - 1e-12 else "failed")


def judge(
    y: np.ndarray,
    p_candidate: np.ndarray,
    p_production: np.ndarray,
    *,
    candidate_threshold: float,
    production_threshold: float,
    rule: GateRule = GateRule(),
    provenance: Provenance | None = None,
) -> Verdict:
    """Apply ``rule`` to a candidate's and production's scores of the same labelled rows
    (``provenance``: where those labels came from, when known)."""
    y = np.asarray(y).astype(np.int8)
    if len(y) != len(p_candidate) or len(y) != len(p_production):
        raise ValueError("labels and both models' scores must have the same rows")
    w = rule.negative_weight
    target = figures(y, p_production, production_threshold, neg_weight=w)["precision"]
    prod = figures(y, p_production, production_threshold, target, w)
    cand = figures(y, p_candidate, candidate_threshold, target, w)
    frauds = int(y.sum())

    def held(reason: str, checks: list[Check] | None = None,
             interval: GainInterval | None = None) -> Verdict:
        return Verdict(cand, prod, target, checks or [], f"held: {reason}", "held", frauds,
                       interval, provenance)

    if not y.any() or y.all():
        return held("the slice has only one class: nothing to judge")
    if frauds < rule.min_frauds:
        return held(f"the slice has {frauds} frauds, fewer than the {rule.min_frauds} needed "
                    "to judge (widen the window, or wait for labels)")
    interval = auprc_gain_interval(y, p_candidate, p_production, neg_weight=w,
                                   confidence=rule.confidence, resamples=rule.resamples,
                                   seed=rule.seed)
    checks = [
        _check("auprc", cand["prc"], prod["prc"] + rule.min_auprc_gain),
        _check("auprc_gain_lower_bound", interval.lower, rule.min_auprc_gain),
    ]
    fraud_rate = frauds / (frauds + w * (len(y) - frauds))
    need_recall = prod["recall_at_target"] - rule.max_recall_drop
    if target <= fraud_rate + 1e-12:
        checks.append(Check(
            "recall_at_production_precision", cand["recall_at_target"], need_recall,
            "not evaluable", f"production's precision on the slice {target:.4f} is no more "
            f"than its fraud rate {fraud_rate:.4f}: flagging everything reaches it, so every "
            "model has recall 1.0 there"))
    else:
        checks.append(_check("recall_at_production_precision", cand["recall_at_target"],
                             need_recall))
    text = "; ".join(c.text() for c in checks)
    if any(c.status == "failed" for c in checks):
        return Verdict(cand, prod, target, checks, f"failed: {text}", "failed", frauds,
                       interval, provenance)
    if provenance is not None and provenance.hold:
        return held(f"labels in dispute: {provenance.warnings[0]}; {text}", checks, interval)
    if any(c.status == "not evaluable" for c in checks):
        return held(text, checks, interval)
    return Verdict(cand, prod, target, checks, f"passed: {text}", "passed", frauds, interval,
                   provenance)


def winner(verdicts: Sequence[Verdict]) -> int | None:
    """Index of the candidate to promote: the passing one with the highest AUPRC (the first on
    ties), or None when none passed."""
    passing = [i for i, v in enumerate(verdicts) if v.passed]
    return max(passing, key=lambda i: (verdicts[i].candidate["prc"], -i)) if passing else None
