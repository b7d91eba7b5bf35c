"""The gate's evidence beyond point figures (pure): how sure the AUPRC gain is, and where the
judging slice's labels came from.

* :func:`auprc_gain_interval` — a paired, stratified bootstrap of the AUPRC difference
  (candidate − production) over the slice's rows: each resample draws the slice's frauds and its
  genuine rows with replacement, separately (so every resample has the slice's class counts),
  and scores both models on the same draw. Seeded: the same inputs give the same interval.
* :func:`label_provenance` — which share of the slice's positives and negatives came from
  chargebacks, analysts, replayed truth (or the training file), how many analyst verdicts
  override an independent truth (a chargeback or replayed truth saying the opposite about the
  same transaction), and warnings when analysts contradict that truth or dominate the labels.

Shapes: ``y`` ``(n,)`` 0/1, scores ``(n,)`` in [0, 1], ``sources`` ``n`` strings or None
(unlabelled: genuine because mature), ``contradicted`` ``(n,)`` bool.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class GainInterval:
    """The bootstrap interval of ``candidate AUPRC − production AUPRC`` on the slice."""

    gain: float  # on the slice itself
    lower: float
    upper: float
    confidence: float  # two-sided, e.g. 0.95: lower/upper are the 2.5 % / 97.5 % quantiles
    resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Ranked:
    """One model's scores sorted once (descending, stable), with the ends of tied groups, so a
    resample's AUPRC is two cumulative sums over weights."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        self.order = np.argsort(-np.asarray(p, dtype=np.float64), kind="stable")
        sorted_p = np.asarray(p, dtype=np.float64)[self.order]
        self.ends = np.flatnonzero(np.r_[sorted_p[1:] != sorted_p[:-1], True])
        self.pos = (np.asarray(y)[self.order] == 1).astype(np.float64)

    def auprc(self, weights: np.ndarray) -> float:
        """Average precision (sklearn's definition) with per-row ``weights`` ``(n,)``."""
        w = weights[self.order]
        tp = np.cumsum(w * self.pos)[self.ends]
        flagged = np.cumsum(w)[self.ends]  # tp + fp
        precision = np.divide(tp, flagged, out=np.zeros_like(tp), where=flagged > 0)
        recall = tp / tp[-1]
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def weighted_auprc(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> float:
    """AUPRC of scores ``p`` against ``y`` with per-row ``weights`` (the bootstrap's kernel)."""
    return _Ranked(y, p).auprc(np.asarray(weights, dtype=np.float64))


def auprc_gain_interval(y: np.ndarray, p_candidate: np.ndarray, p_production: np.ndarray, *,
                        neg_weight: float = 1.0, confidence: float = 0.95,
                        resamples: int = 1000, seed: int = 0) -> GainInterval:
    """The paired, stratified bootstrap interval of the AUPRC gain (module docstring); genuine
    rows weigh ``neg_weight`` as in the gate's figures. ``y`` must hold both classes."""
    y = np.asarray(y).astype(np.int8)
    base = np.where(y == 1, 1.0, float(neg_weight))
    cand, prod = _Ranked(y, p_candidate), _Ranked(y, p_production)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    counts = np.zeros(len(y))
    for i in range(resamples):
        counts[pos] = np.bincount(rng.integers(0, len(pos), len(pos)), minlength=len(pos))
        counts[neg] = np.bincount(rng.integers(0, len(neg), len(neg)), minlength=len(neg))
        w = counts * base
        gains[i] = cand.auprc(w) - prod.auprc(w)
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(gains, [tail, 1.0 - tail])
    return GainInterval(cand.auprc(base) - prod.auprc(base), float(lower), float(upper),
                        confidence, resamples, seed)


@dataclass(frozen=True)
class Provenance:
    """Where the slice's labels came from (counts by source of each row's current label) and
    what about them is suspect (``warnings``; ``hold``: too suspect to promote on)."""

    positives: dict[str, int]
    negatives: dict[str, int]  # UNLABELLED: mature rows without a label (genuine)
    contradicted: int  # rows whose analyst label overrides an independent truth
    contradicted_fraud: int  # ... of which the independent truth said fraud
    analyst_share: float  # of the slice's explicit labels (both classes)
    warnings: list[str] = field(default_factory=list)
    hold: bool = False

    def shares(self) -> dict[str, dict[str, float]]:
        """Each class's share by source, e.g. ``{"positives": {"chargeback": 0.8, ...}}``."""
        def of(counts: dict[str, int]) -> dict[str, float]:
            total = sum(counts.values())
            return {k: round(v / total, 4) for k, v in counts.items()} if total else {}

        return {"positives": of(self.positives), "negatives": of(self.negatives)}

    def line(self) -> str:
        """One line for people: ``frauds 80% chargeback, 20% analyst; genuine ...``."""
        def part(name: str, shares: dict[str, float]) -> str:
            return f"{name} " + (", ".join(f"{v:.0%} {k}" for k, v in sorted(
                shares.items(), key=lambda kv: -kv[1])) or "none")

        s = self.shares()
        return f"{part('frauds', s['positives'])}; {part('genuine', s['negatives'])}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shares": self.shares(), "line": self.line()}


def label_provenance(y: np.ndarray, sources: Sequence[str | None],
                     contradicted: np.ndarray | None = None, *,
                     max_analyst_share: float = 0.5,
                     max_contradicted_share: float = 0.05) -> Provenance:
    """The provenance of a slice's labels ``y`` whose current labels came from ``sources``
    (None: unlabelled) and ``contradicted`` (an analyst label overriding an independent truth).

    Warnings: any contradiction; analysts supplying more than ``max_analyst_share`` of the
    explicit labels. ``hold`` when the contradicted rows exceed ``max_contradicted_share`` of the
    slice's frauds (at least one row): the labels the gate would judge on are then in dispute
    (e.g. analysts marking real frauds genuine), and a model trained to agree with them looks
    better than production precisely because production catches those frauds."""
    y = np.asarray(y).astype(np.int8)
    if len(sources) != len(y):
        raise ValueError("sources and labels must have the same rows")
    names = [UNLABELLED if s is None else s for s in sources]
    flags = np.zeros(len(y), dtype=bool) if contradicted is None else np.asarray(
        contradicted, dtype=bool)
    positives = dict(Counter(n for n, label in zip(names, y, strict=True) if label == 1))
    negatives = dict(Counter(n for n, label in zip(names, y, strict=True) if label == 0))
    explicit = sum(positives.values()) + sum(v for k, v in negatives.items() if k != UNLABELLED)
    analysts = positives.get("analyst", 0) + negatives.get("analyst", 0)
    share = analysts / explicit if explicit else 0.0
    n_contradicted = int(flags.sum())
    # a contradicted row labelled genuine now was fraud by the independent truth, and vice versa
    contradicted_fraud = int(np.sum(flags & (y == 0)))
    warnings = []
    if n_contradicted:
        warnings.append(
            f"{n_contradicted} analyst label(s) in the slice contradict a chargeback or replayed "
            f"truth about the same transaction ({contradicted_fraud} marking a fraud genuine)")
    if share > max_analyst_share:
        warnings.append(f"analyst labels dominate the slice: {share:.0%} of its {explicit:,} "
                        f"explicit labels (more than {max_analyst_share:.0%})")
    frauds = int(y.sum())
    hold = n_contradicted > max(max_contradicted_share * frauds, 0.0) and n_contradicted >= 1
    return Provenance(positives, negatives, n_contradicted, contradicted_fraud, share,
                      warnings, hold)
