"""Scoring one decoded micro-batch (pure): features through the shared contract, scores, flags,
and the batch's rows — decisions, alerts, inline labels — and alert events. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models import FEATURE_NAMES, ScoringFamily, top_features
from schemas.events import AlertV1
from schemas.features import FeatureContract
from schemas.ids import derived_id
from schemas.times import event_time_us
from scorer.decode import DecodedBatch
from store.columns import Columns, Micros
from stream import BatchEffects

#: Label ids of truths that rode inside a transaction event (``is_fraud``) are derived from its
#: id under this prefix (``inline:<id>``; hashed when too long, see :func:`derived_id`).
INLINE_LABEL = "inline"
_COLUMN = {name: j for j, name in enumerate(FEATURE_NAMES)}  # feature name → raw matrix column


@dataclass(frozen=True)
class ScoringModel:
    """A registered model ready to score: version, threshold, feature contract, and the
    family's scoring form (``net``: any :class:`models.ScoringFamily`)."""

    version: int
    threshold: float
    contract: FeatureContract  # a keyed model's: schemas.behaviour.BehaviourContract
    net: ScoringFamily
    drift: Any = None  # its metrics.drift.DriftReference (None: registered without one)
    input: str = "transaction.v1"  # the event kind it takes (schemas.keyed.INPUT_KINDS)

    def score_raw(self, raw: np.ndarray) -> np.ndarray:
        """Scores ``(n,)`` in [0, 1] for a raw matrix ``(n, 29)``."""
        if len(raw) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.net.score(self.contract.transform(raw))

    def top_features(self, raw: np.ndarray) -> list[list[dict[str, Any]]]:
        """The top contributing features of each row of a raw matrix ``(n, 29)``."""
        if len(raw) == 0:
            return []
        spec = getattr(self.contract, "spec", None)  # a keyed model names its own inputs
        phi = self.net.explain(self.contract.transform(raw))
        return top_features(phi) if spec is None else top_features(phi,
                                                                   names=spec.input_names())


@dataclass(frozen=True)
class DriftSample:
    """What the drift window needs of a batch: the model's reference, the model inputs
    ``(n, 29)`` (the transformed matrix already computed for scoring) and event times ``(n,)``."""

    reference: Any  # metrics.drift.DriftReference
    inputs: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class ScoreEffects(BatchEffects):
    """A scored batch's effects, plus its :class:`DriftSample` for the metrics (or None)."""

    drift: DriftSample | None = None


@dataclass(frozen=True)
class ScoredBatch:
    scores: np.ndarray  # (n,)
    flagged: np.ndarray  # (n,) bool
    decision_rows: Columns  # one per scored event, for ``decisions``
    alert_rows: list[dict[str, Any]]  # flagged events, for ``alerts``
    alerts: list[AlertV1]  # the same, as alert events
    label_rows: Columns  # inline ``is_fraud`` truths, for ``labels``
    drift: DriftSample | None = None  # only when asked for and the model has a reference


def score_batch(batch: DecodedBatch, model: ScoringModel,
                now: datetime | None = None, drift: bool = False,
                raw: np.ndarray | None = None) -> ScoredBatch:
    """Score the valid events of ``batch``; flag ``score >= model.threshold``; explain the
    flagged ones only (so throughput does not pay for explaining every event). ``drift``: keep
    the model inputs and event times for the drift window (when the model has a reference).
    ``raw``: the model inputs when they are not the v1 events' own (a keyed model's)."""
    raw = batch.raw_matrix() if raw is None else raw
    sample = None
    if drift and model.drift is not None and len(raw):
        inputs = model.contract.transform(raw)
        scores = model.net.score(inputs)
        sample = DriftSample(model.drift, inputs, batch.column("time_s"))
    else:
        scores = model.score_raw(raw)
    flagged = scores >= model.threshold
    flagged_at = np.flatnonzero(flagged)
    explanations = model.top_features(raw[flagged_at])
    now = now or datetime.now(UTC)
    decisions = decision_rows(batch, model, scores, flagged, now)
    labels = label_rows(batch, decisions, now)
    spec = getattr(model.contract, "spec", None)  # a keyed model's inputs have their own names
    columns = _COLUMN if spec is None else {n: j for j, n in enumerate(spec.input_names())}
    rows: list[dict[str, Any]] = []
    alerts: list[AlertV1] = []
    for i, explanation in zip(flagged_at, explanations, strict=True):
        event, record = batch.events[i], batch.records[i]
        alert = AlertV1(schema_version=1, transaction_id=event["transaction_id"],
                        model_version=model.version, score=float(scores[i]),
                        threshold=model.threshold, amount=float(event["amount"]),
                        time_s=float(event["time_s"]), source_topic=record.topic,
                        source_partition=record.partition, source_offset=record.offset,
                        scored_at=now, top_features=explanation)
        alerts.append(alert)
        rows.append({**alert.model_dump(exclude={"schema_version", "scored_at", "top_features"}),
                     "explanation": explanation,
                     "feature_values": seen_values(raw[i], explanation, columns),
                     "created_at": now})
    return ScoredBatch(scores, flagged, decisions, rows, alerts, labels, sample)


def seen_values(raw_row: np.ndarray, explanation: list[dict[str, Any]],
                columns: Mapping[str, int] = _COLUMN) -> dict[str, float]:
    """The raw values the model saw for the explained features, ``{feature: value}``, from the
    event's raw feature row (before the feature contract's transform; ``columns``: each
    feature's column in it, the v1 event's by default)."""
    return {c["feature"]: float(raw_row[columns[c["feature"]]]) for c in explanation}


def decision_rows(batch: DecodedBatch, model: ScoringModel, scores: np.ndarray,
                  flagged: np.ndarray, now: datetime) -> Columns:
    """One ``decisions`` row per valid event of ``batch``: its id, ``model``'s version and
    threshold, its score (``scores``: ``(n,)`` float64) and flag (``flagged``: ``(n,)`` bool), its
    amount and event time, its lineage (topic/partition/offset) and ``now`` as scored-at — built
    as columns (the event times computed for the whole batch)."""
    n, records = len(batch.events), batch.records
    return Columns({
        "transaction_id": [event["transaction_id"] for event in batch.events],
        "model_version": [model.version] * n, "score": scores.tolist(),
        "threshold": [model.threshold] * n, "flagged": flagged.tolist(),
        "amount": batch.column("amount").tolist(),
        "event_time": Micros(event_time_us(batch.column("time_s"))),
        "source_topic": [record.topic for record in records],
        "source_partition": [record.partition for record in records],
        "source_offset": [record.offset for record in records],
        "scored_at": [now] * n})


def label_rows(batch: DecodedBatch, decisions: Columns, now: datetime) -> Columns:
    """The ``labels`` rows of the truths that rode inside ``batch``'s events (``is_fraud``),
    observed at the event time (``decisions``: the batch's decision rows), received ``now``."""
    truths = batch.labels()
    at = np.flatnonzero(truths >= 0)
    rows = decisions.take(at)
    n = len(at)
    return Columns({
        "label_id": [derived_id(INLINE_LABEL, tid) for tid in rows["transaction_id"]],
        "transaction_id": rows["transaction_id"], "is_fraud": truths[at].tolist(),
        "source": ["replay"] * n, "observed_at": rows["event_time"],
        "reason": ["is_fraud carried by the transaction event"] * n, "received_at": [now] * n,
        "source_topic": rows["source_topic"], "source_partition": rows["source_partition"],
        "source_offset": rows["source_offset"]})


def shadow_decisions(batch: DecodedBatch, model: ScoringModel, now: datetime | None = None,
                     raw: np.ndarray | None = None) -> tuple[Columns, int]:
    """The shadow model's decision rows for the valid events of ``batch`` (same lineage as
    production's, its own version and threshold) and how many it flags. A shadow raises no
    alert, so nothing is explained or published; inline labels are production's to write.
    ``raw``: the shadow's inputs when they are not the v1 events' own (a keyed model's)."""
    scores = model.score_raw(batch.raw_matrix() if raw is None else raw)
    flagged = scores >= model.threshold
    return decision_rows(batch, model, scores, flagged, now or datetime.now(UTC)), \
        int(flagged.sum())
