"""Decoding a micro-batch of Kafka records into valid transactions and dead letters (pure).

No broker is needed: a record is anything with ``topic``, ``partition``, ``offset`` and ``value``
(bytes or None), such as kafka-python's ``ConsumerRecord``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from schemas.events import MAX_EVENT_BYTES, TransactionV1
from schemas.features import raw_matrix_from_events


@dataclass(frozen=True)
class DeadLetter:
    """A record that is not a valid transaction event, with the reason (one line)."""

    record: Any
    reason: str


@dataclass
class DecodedBatch:
    events: list[TransactionV1] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)  # the record of each event, same order
    dead: list[DeadLetter] = field(default_factory=list)

    def raw_matrix(self) -> np.ndarray:
        """``(n, 29)`` raw features of the valid events."""
        return raw_matrix_from_events(self.events)

    def labels(self) -> np.ndarray:
        """``(n,)`` int8: 0/1 where the event carries ``is_fraud``, -1 where it does not."""
        return np.array([-1 if e.is_fraud is None else e.is_fraud for e in self.events],
                        dtype=np.int8)


def reason_of(error: ValidationError) -> str:
    """A one-line reason from a pydantic error, e.g. ``amount: Input should be >= 0``."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "event"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def decode_one(value: bytes | None) -> TransactionV1 | str:
    """The event in ``value``, or the reason it is not a valid transaction event v1."""
    if value is None or not value:
        return "empty message"
    if len(value) > MAX_EVENT_BYTES:
        return f"oversized: {len(value)} bytes > {MAX_EVENT_BYTES}"
    try:
        return TransactionV1.model_validate_json(value)
    except ValidationError as exc:
        return reason_of(exc)


def decode_batch(records: Sequence[Any]) -> DecodedBatch:
    """Split ``records`` into valid events (in order) and dead letters."""
    batch = DecodedBatch()
    for record in records:
        result = decode_one(record.value)
        if isinstance(result, str):
            batch.dead.append(DeadLetter(record, result))
        else:
            batch.events.append(result)
            batch.records.append(record)
    return batch
