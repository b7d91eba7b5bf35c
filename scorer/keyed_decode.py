"""Decoding keyed (``transaction.v2``) records into the fields a keyed model uses (pure).

The pydantic model :class:`schemas.keyed.TransactionV2` is the authority. Validating an event
with it costs ~20 µs (most of it the ``event_time`` parse), so each event is first tried on a
fast path (orjson, exact type checks, one ISO-8601 shape for ``event_time``) that accepts only a
strict subset of what the model accepts, with the same values; anything else — malformed or
merely unusual (extra ``features``, another time format) — goes to the model, which either
accepts it or gives the dead-letter reason. A property test (``tests/test_keyed_fast_path.py``)
holds the fast path to that both ways. Both paths then face the same checks: the horizon (an
event dated later than the wall clock plus the allowed skew) and the message key (it must be the
event's ``customer_id``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from schemas.events import MAX_ID_LENGTH, dataset_seconds
from schemas.keyed import INPUT_KEYED, TransactionV2, wrong_input_reason
from schemas.times import Horizon, from_micros, in_range_reason, micros
from schemas.validation import json_object, validate_event

#: The one ``event_time`` shape the fast path parses itself (what the simulator and replay
#: write): ``YYYY-MM-DDTHH:MM:SS[.f{1,6}]`` then ``Z`` or ``±HH:MM``.
_plain_time = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})").fullmatch
_ID_FIELDS = ("transaction_id", "customer_id", "terminal_id")


def _fields(transaction_id: str, customer_id: str, terminal_id: str, amount: float,
            when: datetime, is_fraud: int | None) -> dict[str, Any]:
    """The keyed model's view of an event (``time_us``: µs since the Unix epoch; ``time_s``:
    dataset seconds)."""
    return {"transaction_id": transaction_id, "customer_id": customer_id,
            "terminal_id": terminal_id, "amount": amount, "time_us": micros(when),
            "time_s": dataset_seconds(when), "is_fraud": is_fraud}


def _plain_id_ok(value: Any) -> bool:
    """A plain id: printable text (``isprintable`` refuses every control character, which is
    what the schema's pattern refuses, and some characters the pattern accepts: those go to
    the model)."""
    return type(value) is str and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def fast_keyed(value: bytes | None) -> dict[str, Any] | None:
    """The event's fields if the fast path accepts it (types exactly right, a plain
    ``event_time``, no extra ``features``), else None: left to the model."""
    event = json_object(value)
    if event is None:
        return None
    try:
        version, amount, stamp = event["schema_version"], event["amount"], event["event_time"]
        label = event.get("is_fraud")
        ids = [event[name] for name in _ID_FIELDS]
    except KeyError:
        return None
    if not (type(version) is int and version == 2 and event.get("features") is None
            and (label is None or (type(label) is int and label in (0, 1)))
            and type(amount) in (float, int) and all(map(_plain_id_ok, ids))
            and type(stamp) is str and _plain_time(stamp)):
        return None
    try:
        amount = float(amount)
        when = datetime.fromisoformat(stamp)
    except (OverflowError, ValueError):
        return None
    if not (math.isfinite(amount) and amount >= 0) or in_range_reason(when) is not None:
        return None
    return _fields(*ids, amount, when.astimezone(UTC), label)


def model_keyed(value: bytes | None) -> dict[str, Any] | str:
    """The event's fields per the model, or the reason it is not a valid keyed event."""
    result = validate_event(TransactionV2, value)
    if isinstance(result, str):
        return wrong_input_reason(value, INPUT_KEYED) or result
    return _fields(result.transaction_id, result.customer_id, result.terminal_id,
                   result.amount, result.event_time, result.is_fraud)


def keyed_decoder(horizon: Horizon) -> Callable[[Any], dict[str, Any] | str]:
    """The decoder of keyed records under ``horizon`` (one per batch): a record's fields, or
    the reason it cannot be scored by a keyed model (dated beyond ``horizon``, or not keyed by
    its ``customer_id``, included)."""
    return partial(_decode, horizon=horizon, latest_us=micros(horizon.latest))


def _decode(record: Any, horizon: Horizon, latest_us: int) -> dict[str, Any] | str:
    fields = fast_keyed(record.value)
    result = fields if fields is not None else model_keyed(record.value)
    if isinstance(result, str):
        return result
    if result["time_us"] > latest_us:
        return horizon.refusal("event_time", from_micros(result["time_us"]))
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    if key != result["customer_id"]:
        return (f"message key: {'missing' if key is None else repr(key[:40])}, but a keyed "
                f"event must be keyed by its customer_id ({result['customer_id'][:40]!r})")
    return result
