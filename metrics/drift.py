"""Data drift (pure numpy, no I/O but :meth:`DriftReference.save`/:func:`load_reference`).

* A :class:`DriftReference` is fitted at training on the TRAIN split: for each model input
  (:data:`schemas.features.MODEL_FEATURES`, i.e. the transformed matrix the model sees) the
  inner edges of 10 quantile bins — deduplicated, the outer bins open-ended, so every value
  falls in a bin — and the share of train rows in each bin; the same for the model's scores on
  the train split (quantile edges of the train scores, inside [0, 1]). It is stored as plain
  JSON numbers in the model's artifacts (``drift_reference.json``, hashed by the manifest).
* A :class:`DriftWindow` keeps a rolling window by *event time* (``time_s`` of the events,
  dataset seconds; default one hour) as per-bin counts in time buckets (default 60): adding a
  batch is a few vectorised ``searchsorted``/``bincount`` calls, and buckets older than the
  window fall off as the newest event time advances.
* :func:`psi` is the Population Stability Index of window shares ``a`` against reference shares
  ``e``: ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)``, with both shares floored at
  :data:`EPSILON` so an empty bin stays finite. Rule of thumb: < 0.1 stable, 0.1–0.2 moderate,
  > 0.2 a significant shift.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.features import MODEL_FEATURES

REFERENCE_FILE = "drift_reference.json"
REFERENCE_VERSION = 1
N_BINS = 10
EPSILON = 1e-4
DEFAULT_WINDOW_S = 3600.0
DEFAULT_BUCKETS = 60


def quantile_edges(values: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Inner edges (at most ``bins - 1``, sorted, unique) of ``bins`` quantile bins of
    ``values``; the outer bins are open-ended."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 .. len(edges) (a value equal to an edge goes to the bin above)."""
    return np.searchsorted(edges, values, side="right")


def shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each of the ``len(edges) + 1`` bins (zeros when empty)."""
    counts = np.bincount(bin_index(edges, values), minlength=len(edges) + 1).astype(np.float64)
    total = counts.sum()
    return counts / total if total else counts


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """``sum((a - e) * ln(a / e))`` over bins, shares floored at ``epsilon`` (empty bins)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class DriftReference:
    """Per-feature and score bins with their train-split shares (see the module doc)."""

    features: tuple[str, ...]
    edges: tuple[np.ndarray, ...]  # inner edges per feature
    shares: tuple[np.ndarray, ...]  # len(edges[j]) + 1 shares per feature
    score_edges: np.ndarray
    score_shares: np.ndarray
    rows: int

    @classmethod
    def fit(cls, inputs: np.ndarray, scores: np.ndarray, bins: int = N_BINS,
            features: Sequence[str] = MODEL_FEATURES) -> DriftReference:
        """From the train split's model inputs ``(n, len(features))`` and its scores ``(n,)``."""
        inputs = np.asarray(inputs)
        if inputs.ndim != 2 or inputs.shape[1] != len(features):
            raise ValueError(f"inputs must have shape (n, {len(features)}), got {inputs.shape}")
        edges = tuple(quantile_edges(inputs[:, j], bins) for j in range(len(features)))
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        score_edges = quantile_edges(scores, bins)
        return cls(tuple(features), edges,
                   tuple(shares(e, inputs[:, j]) for j, e in enumerate(edges)),
                   score_edges, shares(score_edges, scores), len(inputs))

    def to_dict(self) -> dict[str, Any]:
        return {"reference_version": REFERENCE_VERSION, "rows": self.rows, "bins": N_BINS,
                "psi": "sum((a - e) * ln(a / e)), shares floored at 1e-4",
                "features": {name: {"edges": e.tolist(), "shares": s.tolist()}
                             for name, e, s in zip(self.features, self.edges, self.shares,
                                                   strict=True)},
                "score": {"edges": self.score_edges.tolist(),
                          "shares": self.score_shares.tolist()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReference:
        if data.get("reference_version") != REFERENCE_VERSION:
            raise ValueError(f"unsupported drift reference version "
                             f"{data.get('reference_version')!r}")
        feats = data["features"]
        if list(feats) != list(MODEL_FEATURES):
            raise ValueError("drift reference features do not match this code's MODEL_FEATURES")

        def pair(item: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
            e = np.asarray(item["edges"], dtype=np.float64)
            s = np.asarray(item["shares"], dtype=np.float64)
            if len(s) != len(e) + 1 or np.any(np.diff(e) <= 0):
                raise ValueError("drift reference bins are inconsistent")
            return e, s

        pairs = [pair(feats[name]) for name in MODEL_FEATURES]
        score_e, score_s = pair(data["score"])
        return cls(tuple(MODEL_FEATURES), tuple(p[0] for p in pairs),
                   tuple(p[1] for p in pairs), score_e, score_s, int(data["rows"]))

    def save(self, directory: Path) -> Path:
        path = Path(directory) / REFERENCE_FILE
        path.write_text(json.dumps(self.to_dict()) + "\n")
        return path

    def report(self, inputs: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
        """PSI of a whole sample (model inputs ``(n, F)`` and scores ``(n,)``), no window."""
        inputs = np.asarray(inputs)
        feature_psi = {name: psi(s, shares(e, inputs[:, j])) if len(inputs) else math.nan
                       for j, (name, e, s) in enumerate(zip(self.features, self.edges,
                                                            self.shares, strict=True))}
        score_psi = (psi(self.score_shares, shares(self.score_edges, scores))
                     if len(scores) else math.nan)
        return {"events": len(inputs), "feature_psi": feature_psi, "score_psi": score_psi}


def load_reference(directory: Path) -> DriftReference | None:
    """The reference in a model's artifact directory; None when the model has none (models
    registered before drift references existed). FraudstreamError when it is unreadable."""
    path = Path(directory) / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        return DriftReference.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FraudstreamError(f"{path}: unreadable drift reference: {exc}") from exc


class DriftWindow:
    """Rolling per-bin counts over the last ``window_s`` seconds of event time, in ``buckets``
    time buckets (a bucket falls off whole once the newest event time has moved past it).

    Not thread-safe by itself: the caller serialises :meth:`add` and the reads.
    """

    def __init__(self, reference: DriftReference, window_s: float = DEFAULT_WINDOW_S,
                 buckets: int = DEFAULT_BUCKETS) -> None:
        if not window_s > 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self.reference, self.window_s, self.buckets = reference, float(window_s), buckets
        self.bucket_s = self.window_s / buckets
        sizes = [len(e) + 1 for e in reference.edges]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._nbins = int(self._offsets[-1])
        self._nscore = len(reference.score_edges) + 1
        self._counts = np.zeros((buckets, self._nbins), dtype=np.int64)
        self._score_counts = np.zeros((buckets, self._nscore), dtype=np.int64)
        self._events = np.zeros(buckets, dtype=np.int64)
        self._ids = np.full(buckets, -1, dtype=np.int64)  # absolute bucket held by each slot
        self.newest: int | None = None  # newest absolute bucket seen

    def add(self, inputs: np.ndarray, scores: np.ndarray, times: np.ndarray) -> None:
        """Count a batch: model inputs ``(n, F)``, scores ``(n,)``, event times ``(n,)`` s."""
        n = len(times)
        if n == 0:
            return
        ids = np.floor(np.asarray(times, dtype=np.float64) / self.bucket_s).astype(np.int64)
        top = int(ids.max())
        self.newest = top if self.newest is None else max(self.newest, top)
        keep = ids > self.newest - self.buckets  # older events are already outside the window
        if not keep.all():
            inputs, scores, ids = inputs[keep], np.asarray(scores)[keep], ids[keep]
            if len(ids) == 0:
                return
        slots = ids % self.buckets
        for bucket in np.unique(ids):  # recycle slots holding an older bucket
            slot = int(bucket % self.buckets)
            if self._ids[slot] != bucket:
                self._ids[slot] = bucket
                self._counts[slot] = 0
                self._score_counts[slot] = 0
                self._events[slot] = 0
        flat = np.empty(inputs.shape, dtype=np.int64)
        for j, edges in enumerate(self.reference.edges):
            flat[:, j] = bin_index(edges, inputs[:, j]) + self._offsets[j]
        flat += (slots * self._nbins)[:, None]
        self._counts += np.bincount(flat.ravel(), minlength=self.buckets * self._nbins
                                    ).reshape(self.buckets, self._nbins)
        sidx = bin_index(self.reference.score_edges, scores) + slots * self._nscore
        self._score_counts += np.bincount(sidx, minlength=self.buckets * self._nscore
                                          ).reshape(self.buckets, self._nscore)
        self._events += np.bincount(slots, minlength=self.buckets)

    def _live(self) -> np.ndarray:
        if self.newest is None:
            return np.zeros(self.buckets, dtype=bool)
        return (self._ids > self.newest - self.buckets) & (self._ids >= 0)

    @property
    def events(self) -> int:
        return int(self._events[self._live()].sum())

    def psi(self) -> dict[str, Any]:
        """``{"events", "feature_psi": {feature: psi}, "score_psi"}`` of the window (NaN PSI
        while the window is empty)."""
        live = self._live()
        counts = self._counts[live].sum(axis=0)
        score_counts = self._score_counts[live].sum(axis=0)
        events = int(self._events[live].sum())
        ref = self.reference
        if events == 0:
            return {"events": 0, "feature_psi": dict.fromkeys(ref.features, math.nan),
                    "score_psi": math.nan}
        feature_psi = {name: psi(s, counts[self._offsets[j]:self._offsets[j + 1]] / events)
                       for j, (name, s) in enumerate(zip(ref.features, ref.shares, strict=True))}
        return {"events": events, "feature_psi": feature_psi,
                "score_psi": psi(ref.score_shares, score_counts / events)}
