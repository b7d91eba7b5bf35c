"""The feature contract: the one transform from a raw transaction to model input.

Trainer and scorer both call :class:`FeatureContract`; there is no second implementation.

Shapes and units
----------------
* A *raw matrix* has shape ``(n, 29)``: columns ``V1..V28`` (PCA components, unitless) followed by
  ``Amount`` (currency units, >= 0), in :data:`RAW_FEATURES` order. ``Time`` and the label are
  never model inputs.
* :meth:`FeatureContract.transform` returns ``(n, 29)`` float32: ``V1..V28`` and
  ``log(Amount + 0.001)`` standardised with the train-split mean/scale and clipped to ±5.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

V_COLUMNS: tuple[str, ...] = tuple(f"V{i}" for i in range(1, 29))
#: Columns of ``creditcard.csv``, in file order.
CSV_COLUMNS: tuple[str, ...] = ("Time", *V_COLUMNS, "Amount", "Class")
#: Raw model inputs, in matrix column order (CSV spelling).
RAW_FEATURES: tuple[str, ...] = (*V_COLUMNS, "Amount")
#: The same inputs as spelled in a transaction event.
EVENT_FEATURES: tuple[str, ...] = tuple(c.lower() for c in RAW_FEATURES)
#: Numeric fields of a transaction event, in CSV column order (``Time``, ``V1..V28``, ``Amount``).
EVENT_NUMBERS: tuple[str, ...] = ("time_s", *EVENT_FEATURES)
#: Names of the transformed model inputs.
MODEL_FEATURES: tuple[str, ...] = (*V_COLUMNS, "LogAmount")

AMOUNT_EPSILON = 0.001
CLIP = 5.0
CONTRACT_VERSION = 1


_event_features = itemgetter(*EVENT_FEATURES)


def raw_matrix_from_events(events: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Stack validated transaction events (mappings with ``v1..v28`` and ``amount``, as
    decoded from JSON or ``TransactionV1.model_dump()``) into a ``(n, 29)`` float64 raw matrix."""
    rows = [_event_features(event) for event in events]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(EVENT_FEATURES))


def log_amount(raw: np.ndarray) -> np.ndarray:
    """Return a float64 copy of ``raw`` (n, 29) whose last column is ``log(Amount + 0.001)``."""
    out = np.array(raw, dtype=np.float64, copy=True)
    if out.ndim != 2 or out.shape[1] != len(RAW_FEATURES):
        raise ValueError(f"raw matrix must have shape (n, {len(RAW_FEATURES)}), got {out.shape}")
    out[:, -1] = np.log(out[:, -1] + AMOUNT_EPSILON)
    return out


@dataclass(frozen=True)
class FeatureContract:
    """Standardise-and-clip parameters fitted on the train split, stored as plain JSON numbers.

    ``mean`` and ``scale`` have one entry per :data:`MODEL_FEATURES` column (29).
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    clip: float = CLIP

    @classmethod
    def fit(cls, raw_train: np.ndarray) -> FeatureContract:
        """Fit on the train split's raw matrix ``(n, 29)`` only (as sklearn's StandardScaler)."""
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(log_amount(raw_train))
        return cls(mean=tuple(map(float, scaler.mean_)), scale=tuple(map(float, scaler.scale_)))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Map a raw matrix ``(n, 29)`` to clipped, standardised model input ``(n, 29)`` float32."""
        logged = log_amount(raw)
        scaled = (logged - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract_version": CONTRACT_VERSION,
            "features": list(MODEL_FEATURES),
            "amount_transform": f"log(amount + {AMOUNT_EPSILON})",
            "mean": list(self.mean),
            "scale": list(self.scale),
            "clip": self.clip,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureContract:
        if data.get("contract_version") != CONTRACT_VERSION:
            version = data.get("contract_version")
            raise ValueError(f"unsupported feature contract version {version!r}")
        if list(data.get("features", [])) != list(MODEL_FEATURES):
            raise ValueError("feature contract columns do not match this code's MODEL_FEATURES")
        mean, scale = data["mean"], data["scale"]
        if len(mean) != len(MODEL_FEATURES) or len(scale) != len(MODEL_FEATURES):
            raise ValueError("feature contract mean/scale must have 29 entries")
        return cls(mean=tuple(map(float, mean)), scale=tuple(map(float, scale)),
                   clip=float(data["clip"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> FeatureContract:
        return cls.from_dict(json.loads(path.read_text()))


#: The model artifact holding the raw features' training-set ranges (hashed by the manifest).
RANGES_FILE = "feature_ranges.json"
RANGES_VERSION = 1
#: What a feature's training range records: the extremes and the 1st / 99th percentiles.
RANGE_STATS: tuple[str, ...] = ("min", "p01", "p99", "max")


def feature_ranges(raw_train: np.ndarray,
                   names: Sequence[str] = EVENT_FEATURES) -> dict[str, Any]:
    """The training-set range of each raw feature over the train rows ``raw_train`` ``(n, k)``,
    columns named ``names`` (default: the transaction event's ``v1..v28`` and ``amount``, the
    values as the event carries them, amount in currency units, before the contract's
    transform) — :data:`RANGE_STATS` per feature, as JSON numbers."""
    raw = np.asarray(raw_train, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[1] != len(names) or len(raw) == 0:
        raise ValueError(f"train rows must have shape (n >= 1, {len(names)}), got {raw.shape}")
    low, p01, p99, high = (raw.min(0), *np.quantile(raw, [0.01, 0.99], axis=0), raw.max(0))
    return {"ranges_version": RANGES_VERSION, "rows": len(raw), "stats": list(RANGE_STATS),
            "features": {name: dict(zip(RANGE_STATS, map(float, stats), strict=True))
                         for name, *stats in zip(names, low, p01, p99, high, strict=True)}}


def feature_title(name: str) -> str:
    """What a feature is, in words: ``v8`` → ``V8 (anonymised PCA component 8)``, ``amount`` →
    ``amount (the model sees its log)``; any other name as given."""
    key = name.lower()
    if key == "amount":
        return "amount (the model sees its log)"
    if key in EVENT_FEATURES:
        return f"V{key[1:]} (anonymised PCA component {key[1:]})"
    return name
