"""Scoring one decoded micro-batch (pure): features through the shared contract, scores,
flags, confusion-count deltas and alert events. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from schemas.events import AlertV1
from schemas.features import FeatureContract
from scorer.decode import DecodedBatch
from trainer.metrics import count_flags
from trainer.model import DenseScorer


@dataclass(frozen=True)
class ScoringModel:
    """A registered model ready to score: version, threshold, feature contract, net."""

    version: int
    threshold: float
    contract: FeatureContract
    net: DenseScorer

    def score_raw(self, raw: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` in [0, 1] for a raw matrix ``(n, 29)``."""
        if len(raw) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.net.score(self.contract.transform(raw))


@dataclass(frozen=True)
class Counts:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    unlabelled: int = 0

    @property
    def scored(self) -> int:
        return self.tp + self.fp + self.tn + self.fn + self.unlabelled

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn,
                      self.fn + other.fn, self.unlabelled + other.unlabelled)


@dataclass(frozen=True)
class ScoredBatch:
    scores: np.ndarray  # (n,)
    flagged: np.ndarray  # (n,) bool
    counts: Counts
    alert_rows: list[dict[str, Any]]  # rows for the ``alerts`` table
    alerts: list[AlertV1]  # the same, as alert events


def count(labels: np.ndarray, flagged: np.ndarray) -> Counts:
    """Confusion deltas; ``labels`` is (n,) with -1 for unlabelled events."""
    labelled = labels >= 0
    return Counts(**count_flags(labels[labelled], flagged[labelled]),
                  unlabelled=int(np.sum(~labelled)))


def score_batch(batch: DecodedBatch, model: ScoringModel,
                now: datetime | None = None) -> ScoredBatch:
    """Score the valid events of ``batch``; flag ``score >= model.threshold``."""
    scores = model.score_raw(batch.raw_matrix())
    flagged = scores >= model.threshold
    labels = batch.labels()
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    alerts: list[AlertV1] = []
    for i in np.flatnonzero(flagged):
        event, record = batch.events[i], batch.records[i]
        alert = AlertV1(schema_version=1, transaction_id=event["transaction_id"],
                        model_version=model.version, score=float(scores[i]),
                        threshold=model.threshold, amount=float(event["amount"]),
                        time_s=float(event["time_s"]), source_topic=record.topic,
                        source_partition=record.partition, source_offset=record.offset,
                        scored_at=now)
        alerts.append(alert)
        rows.append({**alert.model_dump(exclude={"schema_version", "scored_at"}),
                     "is_fraud": event.get("is_fraud"), "created_at": now})
    return ScoredBatch(scores, flagged, count(labels, flagged), rows, alerts)
