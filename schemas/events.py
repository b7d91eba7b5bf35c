"""Versioned event contracts: a transaction on ``transactions``, an alert on ``alerts``, a label
on ``labels``.

JSON Schema copies live in ``schemas/json/`` and are kept in sync with these models by a test
(``python -m schemas.export`` rewrites them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.times import (  # noqa: F401  (DATASET_EPOCH, event_time, ...: re-exported)
    DATASET_EPOCH,
    MAX_TIME_S,
    dataset_seconds,
    event_time,
    in_range_reason,
)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Longest accepted transaction id (characters).
MAX_ID_LENGTH = 128
#: Ids are printable text: no control characters (NUL breaks PostgreSQL text, others break logs).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
TransactionId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
#: A 0/1 flag that is an integer on the wire: ``true`` and ``1.0`` are refused, as the JSON
#: Schema says (strict int, not ``Literal``, which compares by equality and lets them through).
Flag01 = Annotated[int, Field(strict=True, ge=0, le=1)]
#: Schema version 1, an integer on the wire (``true`` and ``1.0`` are refused, as for Flag01).
Version1 = Annotated[int, Field(strict=True, ge=1, le=1)]
#: Seconds since :data:`DATASET_EPOCH`, for an event time before 2100 (``schemas.times``).
TimeS = Annotated[float, Field(ge=0, lt=MAX_TIME_S, allow_inf_nan=False, description=(
    "seconds since 2013-09-01T00:00Z: the event time, before 2100-01-01, and not more than the "
    "scorer's --max-future-skew (default 1h) ahead of its wall clock"))]

def aware_utc(value: datetime, name: str, example: str) -> datetime:
    """``value`` in UTC; ValueError (a validation error of field ``name``) when it is naive or
    outside the schema's range (:func:`schemas.times.in_range_reason`)."""
    if value.tzinfo is None:
        raise ValueError(f"{name} needs a timezone (e.g. {example})")
    if (problem := in_range_reason(value)) is not None:
        raise ValueError(problem)
    return value.astimezone(UTC)


#: Events larger than this (bytes) are rejected before parsing.
MAX_EVENT_BYTES = 16_384


class TransactionV1(BaseModel):
    """One card transaction, as replayed from ``creditcard.csv``.

    ``time_s`` is the dataset's ``Time`` (seconds since the first transaction), ``amount`` is in
    currency units, ``v1..v28`` are the dataset's PCA components. ``is_fraud`` is the label, carried
    only for replay evaluation: it is never a model input.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Version1
    transaction_id: TransactionId
    time_s: TimeS
    v1: FiniteFloat
    v2: FiniteFloat
    v3: FiniteFloat
    v4: FiniteFloat
    v5: FiniteFloat
    v6: FiniteFloat
    v7: FiniteFloat
    v8: FiniteFloat
    v9: FiniteFloat
    v10: FiniteFloat
    v11: FiniteFloat
    v12: FiniteFloat
    v13: FiniteFloat
    v14: FiniteFloat
    v15: FiniteFloat
    v16: FiniteFloat
    v17: FiniteFloat
    v18: FiniteFloat
    v19: FiniteFloat
    v20: FiniteFloat
    v21: FiniteFloat
    v22: FiniteFloat
    v23: FiniteFloat
    v24: FiniteFloat
    v25: FiniteFloat
    v26: FiniteFloat
    v27: FiniteFloat
    v28: FiniteFloat
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    is_fraud: Flag01 | None = None


class FeatureContribution(BaseModel):
    """One feature's contribution to an alert's score, in log-odds (margin) units: positive
    pushes towards fraud. ``feature`` is spelled as in the transaction event (``v14``,
    ``amount``)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    feature: Annotated[str, Field(min_length=1, max_length=64)]
    contribution: FiniteFloat


class AlertV1(BaseModel):
    """A transaction the scorer flagged (score >= threshold), for fraud ops.

    Keyed by ``transaction_id`` on the topic; delivery is at-least-once, so consumers
    de-duplicate on (``transaction_id``, ``model_version``). ``top_features``: the largest
    per-feature contributions (by absolute value) as computed by the model that scored it
    (``models``: integrated gradients for ``dense``, TreeSHAP for ``xgboost``); absent from
    alerts written before explanations existed.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Version1
    transaction_id: TransactionId
    model_version: Annotated[int, Field(ge=1)]
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    threshold: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    time_s: TimeS
    source_topic: str
    source_partition: Annotated[int, Field(ge=0)]
    source_offset: Annotated[int, Field(ge=0)]
    scored_at: Annotated[datetime, Field(strict=False)]
    top_features: list[FeatureContribution] | None = None


LabelValue = Literal["fraud", "genuine"]
LabelSource = Literal["chargeback", "analyst", "replay", "other"]
#: Longest accepted free-text reason on a label (characters).
MAX_REASON_LENGTH = 1000


class LabelV1(BaseModel):
    """The truth about one transaction, arriving after it was scored (a chargeback, an analyst's
    verdict, a replayed ``Class``). ``label_id`` makes delivery idempotent; the latest label of a
    transaction (by ``observed_at``, then arrival) is its truth, and earlier ones stay as history.
    ``observed_at`` is when the truth became known (timezone-aware)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Version1
    label_id: TransactionId
    transaction_id: TransactionId
    label: LabelValue
    source: LabelSource
    observed_at: Annotated[datetime, Field(strict=False, description=(
        "when the truth became known: timezone-aware, from 1970-01-01 to before 2100-01-01 "
        "(UTC), and not more than the consumer's --max-future-skew (default 1h) ahead of its "
        "wall clock"))]
    reason: Annotated[str, Field(max_length=MAX_REASON_LENGTH)] | None = None

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return aware_utc(value, "observed_at", "2013-09-02T10:00:00Z")
