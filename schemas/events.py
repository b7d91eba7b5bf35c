"""Versioned event contracts: a transaction on the ``transactions`` topic, an alert on ``alerts``.

JSON Schema copies live in ``schemas/json/`` and are kept in sync with these models by a test
(``python -m schemas.export`` rewrites them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Longest accepted transaction id (characters).
MAX_ID_LENGTH = 128
TransactionId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]

#: Events larger than this (bytes) are rejected before parsing.
MAX_EVENT_BYTES = 16_384


class TransactionV1(BaseModel):
    """One card transaction, as replayed from ``creditcard.csv``.

    ``time_s`` is the dataset's ``Time`` (seconds since the first transaction), ``amount`` is in
    currency units, ``v1..v28`` are the dataset's PCA components. ``is_fraud`` is the label, carried
    only for replay evaluation: it is never a model input.
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    transaction_id: TransactionId
    time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
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
    is_fraud: Literal[0, 1] | None = None


class AlertV1(BaseModel):
    """A transaction the scorer flagged (score >= threshold), for fraud ops.

    Keyed by ``transaction_id`` on the topic; delivery is at-least-once, so consumers
    de-duplicate on (``transaction_id``, ``model_version``).
    """

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Literal[1]
    transaction_id: TransactionId
    model_version: Annotated[int, Field(ge=1)]
    score: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    threshold: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    time_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source_topic: str
    source_partition: Annotated[int, Field(ge=0)]
    source_offset: Annotated[int, Field(ge=0)]
    scored_at: Annotated[datetime, Field(strict=False)]
