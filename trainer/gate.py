"""The promotion gate (pure): a candidate against the production model on the same most recent
labelled slice (the out-of-time test split of a retraining round).

The rule (:class:`GateRule`, printed by :meth:`GateRule.describe`) has two checks, both needed:

* **AUPRC**: the candidate's area under the precision-recall curve (average precision) is at least
  production's plus ``min_auprc_gain`` (default +0.01);
* **recall at production's precision**: take the precision production reaches at its own
  threshold on the slice; the candidate's best recall at that precision or better is not lower
  than production's best recall there, minus ``max_recall_drop`` (default 0).

Inputs are labels ``y`` ``(n,)`` 0/1 and scores ``(n,)`` in [0, 1] of the same rows. A slice
without fraud decides nothing: every candidate is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from models.evaluation import evaluate, recall_at_precision, reweighted
from schemas.errors import FraudstreamError

DEFAULT_MIN_AUPRC_GAIN = 0.01
DEFAULT_MAX_RECALL_DROP = 0.0


@dataclass(frozen=True)
class GateRule:
    """When a candidate beats production (see the module docstring)."""

    min_auprc_gain: float = DEFAULT_MIN_AUPRC_GAIN
    max_recall_drop: float = DEFAULT_MAX_RECALL_DROP
    # Weight of each genuine row in AUPRC and precision (``--negative-weight``): > 1 when the
    # slice's genuine rows are a subsample, so the figures are the population's.
    negative_weight: float = 1.0

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

    def describe(self) -> str:
        """The rule in words, as printed and recorded with every decision."""
        return (
            f"candidate AUPRC >= production AUPRC {self.min_auprc_gain:+.4f} AND candidate "
            f"recall at production's precision >= production's "
            f"{-self.max_recall_drop:+.4f} (same most recent labelled slice"
            + (f"; genuine rows weighted x{self.negative_weight:.4g} in AUPRC and precision)"
               if self.negative_weight != 1.0 else ")")
        )


@dataclass(frozen=True)
class Check:
    name: str
    value: float  # the candidate's figure
    required: float  # what the rule asks of it
    passed: bool


@dataclass(frozen=True)
class Verdict:
    """The gate's judgement of one candidate: both models' figures on the slice and the
    checks. ``passed`` is True when every check passed."""

    candidate: dict[str, float]
    production: dict[str, float]
    target_precision: float  # production's precision at its threshold on the slice
    checks: list[Check]
    reason: str

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "candidate": self.candidate,
            "production": self.production,
            "target_precision": self.target_precision,
            "checks": [asdict(c) for c in self.checks],
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


def judge(
    y: np.ndarray,
    p_candidate: np.ndarray,
    p_production: np.ndarray,
    *,
    candidate_threshold: float,
    production_threshold: float,
    rule: GateRule = GateRule(),
) -> Verdict:
    """Apply ``rule`` to a candidate's and production's scores of the same labelled rows."""
    y = np.asarray(y).astype(np.int8)
    if len(y) != len(p_candidate) or len(y) != len(p_production):
        raise ValueError("labels and both models' scores must have the same rows")
    w = rule.negative_weight
    target = figures(y, p_production, production_threshold, neg_weight=w)["precision"]
    prod = figures(y, p_production, production_threshold, target, w)
    cand = figures(y, p_candidate, candidate_threshold, target, w)
    if not y.any() or y.all():
        return Verdict(cand, prod, target, [], "the slice has only one class: nothing to judge")
    need_prc = prod["prc"] + rule.min_auprc_gain
    need_recall = prod["recall_at_target"] - rule.max_recall_drop
    checks = [
        Check("auprc", cand["prc"], need_prc, cand["prc"] >= need_prc - 1e-12),
        Check(
            "recall_at_production_precision",
            cand["recall_at_target"],
            need_recall,
            cand["recall_at_target"] >= need_recall - 1e-12,
        ),
    ]
    failed = [c for c in checks if not c.passed]
    reason = ("passed: " if not failed else "failed: ") + "; ".join(
        f"{c.name} {c.value:.4f} {'>=' if c.passed else '<'} {c.required:.4f}" for c in checks
    )
    return Verdict(cand, prod, target, checks, reason)


def winner(verdicts: Sequence[Verdict]) -> int | None:
    """Index of the candidate to promote: the passing one with the highest AUPRC (the first on
    ties), or None when none passed."""
    passing = [i for i, v in enumerate(verdicts) if v.passed]
    return max(passing, key=lambda i: (verdicts[i].candidate["prc"], -i)) if passing else None
