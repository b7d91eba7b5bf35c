"""Label records → label rows and dead letters (pure; no broker or database needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.events import LabelV1
from schemas.times import Horizon
from schemas.validation import validate_event
from stream.deadletters import DeadLetter


@dataclass
class DecodedLabels:
    rows: list[dict[str, Any]] = field(default_factory=list)  # for the ``labels`` table
    dead: list[DeadLetter] = field(default_factory=list)


def label_row(label: LabelV1, record: Any, received_at: datetime) -> dict[str, Any]:
    """The ``labels`` row of a valid label event consumed from ``record``."""
    return {"label_id": label.label_id, "transaction_id": label.transaction_id,
            "is_fraud": 1 if label.label == "fraud" else 0, "source": label.source,
            "observed_at": label.observed_at, "reason": label.reason,
            "received_at": received_at, "source_topic": record.topic,
            "source_partition": record.partition, "source_offset": record.offset}


def decode_labels(records: Sequence[Any], horizon: Horizon) -> DecodedLabels:
    """Split ``records`` into label rows (in order) and dead letters with a reason; a label
    observed after ``horizon.latest`` is a dead letter. Rows are received at ``horizon.now``."""
    out = DecodedLabels()
    for record in records:
        result: LabelV1 | str = validate_event(LabelV1, record.value)
        if not isinstance(result, str) and result.observed_at > horizon.latest:
            result = horizon.refusal("observed_at", result.observed_at)
        if isinstance(result, str):
            out.dead.append(DeadLetter(record, result))
        else:
            out.rows.append(label_row(result, record, horizon.now))
    return out
