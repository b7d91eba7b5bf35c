"""Validating one raw event against its model, with a one-line reason when it is refused."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from schemas.events import MAX_EVENT_BYTES

M = TypeVar("M", bound=BaseModel)


def reason_of(error: ValidationError) -> str:
    """A one-line reason from a pydantic error, e.g. ``amount: Input should be >= 0``."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "event"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def json_object(value: bytes | None) -> dict[str, Any] | None:
    """The JSON object ``value`` holds, if it is one and within :data:`MAX_EVENT_BYTES`; else
    None (the fast paths' first step: anything else is left to the model)."""
    if not value or len(value) > MAX_EVENT_BYTES:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return event if type(event) is dict else None


def validate_event(model: type[M], value: bytes | None) -> M | str:
    """``value`` parsed as ``model``, or the one-line reason it is not a valid event."""
    if value is None or not value:
        return "empty message"
    if len(value) > MAX_EVENT_BYTES:
        return f"oversized: {len(value)} bytes > {MAX_EVENT_BYTES}"
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        return reason_of(exc)
