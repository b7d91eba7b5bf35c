"""Model families: one interface for scoring, explaining, saving and loading a trained model,
used by the trainer (to write the artifacts) and by the scorer (to read them).

Every family scores the model input of :class:`schemas.features.FeatureContract` — ``(n, 29)``
float32 — and explains a score in log-odds (margin) space:

* ``score(x)`` → ``(n,)`` float64 fraud probabilities. Each row's score depends on that row
  alone, so a micro-batch scores bit-identically to one big batch.
* ``contributions(x)`` → ``(phi, base)``: ``phi`` ``(n, 29)`` float64 per-feature contributions
  and ``base`` ``(n,)`` float64, with ``phi.sum(1) + base == margin(x)`` (the family's
  completeness property; see each family). ``explain(x)`` is ``phi`` alone.
* ``save(directory)`` writes framework-free files (no pickle, no TensorFlow);
  ``load(directory)`` reads them back. Families: ``dense`` (:mod:`models.dense`, the tutorial's
  Keras net as plain numpy weights) and ``xgboost`` (:mod:`models.xgb`, XGBoost's own JSON).

Importing this package imports neither TensorFlow nor XGBoost; a family's module is imported
when that family is loaded. :mod:`models.evaluation` holds the metrics every part judges a
model by (the tutorial's, plus weighted AUPRC and recall at a precision), used by the
trainer, the promotion gate, ``models compare`` and the benches.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from schemas.errors import FraudstreamError
from schemas.features import EVENT_FEATURES

#: Family name → "module:class" (imported on first use).
FAMILIES: dict[str, str] = {
    "dense": "models.dense:DenseScorer",
    "xgboost": "models.xgb:XGBoostScorer",
}
DEFAULT_FAMILY = "dense"
#: Features named in explanations: the transaction event's spelling (``v1..v28``, ``amount``).
FEATURE_NAMES: tuple[str, ...] = EVENT_FEATURES
TOP_FEATURES = 5


@runtime_checkable
class ScoringFamily(Protocol):
    family: ClassVar[str]

    def score(self, x: np.ndarray) -> np.ndarray: ...

    def margin(self, x: np.ndarray) -> np.ndarray: ...

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def explain(self, x: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> list[str]: ...

    @classmethod
    def load(cls, directory: Path) -> ScoringFamily: ...


def family_class(name: str) -> Any:
    """The class implementing family ``name`` (imports its module)."""
    try:
        target = FAMILIES[name]
    except KeyError:
        raise FraudstreamError(
            f"unknown model family {name!r}; use one of {', '.join(FAMILIES)}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load(name: str, directory: Path) -> ScoringFamily:
    """Load family ``name``'s scoring form from ``directory`` (already hash-verified)."""
    return family_class(name).load(directory)  # type: ignore[no-any-return]


def top_features(phi: np.ndarray, k: int = TOP_FEATURES,
                 names: Sequence[str] = FEATURE_NAMES) -> list[list[dict[str, Any]]]:
    """Per row of contributions ``phi`` ``(n, 29)``: the ``k`` largest by absolute value, as
    ``[{"feature": name, "contribution": value}, ...]`` (largest first, sign kept; ties by
    feature order)."""
    phi = np.asarray(phi, dtype=np.float64)
    order = np.argsort(-np.abs(phi), axis=1, kind="stable")[:, :k]
    return [[{"feature": names[j], "contribution": float(row[j])} for j in idx]
            for row, idx in zip(phi, order, strict=True)]
