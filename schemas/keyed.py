"""The keyed transaction: an event with a card (customer) and a terminal (``transaction.v2``), and
the CSV layouts fraudstream reads (the ULB ``creditcard.csv`` one and the keyed one).

``transaction.v1`` (``V1..V28``, judged alone) stays as it is; ``transaction.v2`` carries the raw
facts a bank's stream has — who paid, where, when, how much — from which the behaviour features
of :mod:`schemas.behaviour` are computed over each card's and each terminal's history. A model
declares which of the two it takes (its ``input``); an event of the other kind is a dead letter
with the reason (:func:`wrong_input_reason`), never a crash.

The keyed CSV layout is the handbook's (*Reproducible Machine Learning for Credit Card Fraud
Detection — Practical Handbook*, Le Borgne et al.): ``TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID,
TERMINAL_ID, TX_AMOUNT, TX_FRAUD`` and optionally ``TX_FRAUD_SCENARIO`` (kept for reports, never a
feature). Other columns (the handbook's ``TX_TIME_SECONDS``/``TX_TIME_DAYS``) are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import FraudstreamError
from schemas.events import Flag01, TransactionId, aware_utc
from schemas.features import CSV_COLUMNS

#: Schema version 2 (the keyed event), an integer on the wire (``true``, ``2.0`` refused).
Version2 = Annotated[int, Field(strict=True, ge=2, le=2)]
#: A name of an extra numeric feature: short, printable, no spaces.
FeatureName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: At most this many extra named features on one event.
MAX_EXTRA_FEATURES = 64

#: Input kinds a model can take: the v1 event (ULB features) or the keyed event.
INPUT_V1 = "transaction.v1"
INPUT_KEYED = "transaction.v2"
INPUT_KINDS = (INPUT_V1, INPUT_KEYED)

#: The keyed CSV layout's required columns (the handbook's names), and its optional one.
KEYED_CSV_COLUMNS: tuple[str, ...] = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID",
                                      "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
SCENARIO_COLUMN = "TX_FRAUD_SCENARIO"
LAYOUT_ULB = "ulb"
LAYOUT_KEYED = "keyed"
#: The input contract, as every refusal of a header names it.
CONTRACT_TEXT = ("the ULB layout (Time, V1..V28, Amount, Class) or the keyed layout "
                 "(TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD"
                 "[, TX_FRAUD_SCENARIO]); see README 'Bring your own data'")


class TransactionV2(BaseModel):
    """One keyed card transaction: ``customer_id`` is the card (and the Kafka message key),
    ``terminal_id`` the terminal or merchant, ``event_time`` when it happened (timezone-aware,
    normalised to UTC), ``amount`` in currency units. ``is_fraud`` is the label, carried only for
    replay evaluation: never a model input. ``features``: optional extra named numeric features
    (at most 64), for a bank's own columns."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    schema_version: Version2
    transaction_id: TransactionId
    event_time: Annotated[datetime, Field(strict=False, description=(
        "when the transaction happened: timezone-aware, from 1970-01-01 to before 2100-01-01 "
        "(UTC)"))]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    customer_id: TransactionId
    terminal_id: TransactionId
    is_fraud: Flag01 | None = None
    features: Annotated[dict[FeatureName, FiniteFloat], Field(
        max_length=MAX_EXTRA_FEATURES,
        json_schema_extra={"additionalProperties": False})] | None = None

    @field_validator("event_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return aware_utc(value, "event_time", "2018-04-01T00:07:56Z")


def declared_version(value: bytes | None) -> int | None:
    """The ``schema_version`` an event says it has (None when unreadable or absent)."""
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    version = event.get("schema_version") if type(event) is dict else None
    return version if type(version) is int else None


def wrong_input_reason(value: bytes | None, accepted: str) -> str | None:
    """The dead-letter reason when ``value`` is a well-labelled event of the other kind than the
    model takes (``accepted``: :data:`INPUT_V1` or :data:`INPUT_KEYED`), else None."""
    kind = {1: INPUT_V1, 2: INPUT_KEYED}.get(declared_version(value) or 0)
    if kind is None or kind == accepted:
        return None
    return (f"schema_version: a {kind} event, but the model in use takes {accepted} events "
            f"({'keyed' if accepted == INPUT_KEYED else 'ULB V1..V28'} model)")


Layout = Literal["ulb", "keyed"]


def detect_layout(header: Sequence[str], source: str) -> Layout:
    """Which input contract a CSV header follows (column order free, extra columns ignored);
    FraudstreamError naming the contract and the missing columns of the nearer layout."""
    names = {str(h).strip() for h in header}
    if not names - {""}:
        raise FraudstreamError(f"{source}: empty file (no header line); fraudstream reads "
                               + CONTRACT_TEXT)
    keyed_missing = [c for c in KEYED_CSV_COLUMNS if c not in names]
    ulb_missing = [c for c in CSV_COLUMNS if c not in names]
    if not keyed_missing:
        return LAYOUT_KEYED
    if not ulb_missing:
        return LAYOUT_ULB
    keyed_near = len(keyed_missing) / len(KEYED_CSV_COLUMNS) < len(ulb_missing) / len(CSV_COLUMNS)
    missing = keyed_missing if keyed_near else ulb_missing
    raise FraudstreamError(f"{source} lacks column(s) {', '.join(missing)}: fraudstream reads "
                           + CONTRACT_TEXT)

