"""Every value the desk takes from a request, checked by its kind before it reaches the store:
one helper per kind, each refusing with a one-line :class:`BadParam` that names the parameter
(the app answers 400 with it).

* whole numbers: the store's ``INTEGER`` range (:data:`INT_MAX`), so PostgreSQL never
  overflows; numbers: finite and within their range (no NaN, no infinity);
* times: ISO, years 1-9999 once in UTC; durations: ``48h`` … at most 100 years;
* ids: :data:`~schemas.events.MAX_ID_LENGTH` printable characters (no control characters:
  NUL breaks PostgreSQL text); user names: the desk's name rule; free text (notes): no NUL, no
  control characters other than tab and newlines, at most its length.

The same bounds type FastAPI's path and body parameters (:data:`VersionPath`, :data:`TxPath`,
:data:`WholePath`, :data:`NamePath`, :data:`Version`).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated

from fastapi import Path
from pydantic import Field

from schemas.durations import parse_duration, parse_time
from schemas.errors import FraudstreamError
from schemas.events import ID_PATTERN, MAX_ID_LENGTH

#: Largest value of the store's INTEGER columns (model versions, ids, revisions).
INT_MAX = 2**31 - 1
MAX_NAME = 64
NAME_PATTERN = r"^[\w.-]+$"
_ID = re.compile(ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_TEXT_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

VersionPath = Annotated[int, Path(ge=1, le=INT_MAX, description="model version")]
WholePath = Annotated[int, Path(ge=1, le=INT_MAX)]
TxPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="id")
]
NamePath = Annotated[str, Path(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN)]
Version = Annotated[int, Field(ge=1, le=INT_MAX)]


class BadParam(ValueError):
    """A request value that cannot be used; the message names the parameter and says why."""


def _shown(raw: object) -> str:
    return repr(str(raw)[:40])


def number(name: str, raw: str | None, low: float, high: float) -> float | None:
    """A finite number in ``[low, high]`` from text (None if empty)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParam(f"{name}: not a number: {_shown(raw)}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise BadParam(f"{name} must be between {low:g} and {high:g}, not {_shown(raw)}")
    return value


def whole(name: str, raw: str | int | None, low: int = 1, high: int = INT_MAX) -> int | None:
    """A whole number in ``[low, high]`` (default: the store's positive INTEGER range)."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d{1,20}", text, flags=re.ASCII):
        raise BadParam(f"{name} must be a whole number, not {_shown(text)}")
    value = int(text)
    if not low <= value <= high:
        raise BadParam(f"{name} must be between {low} and {high}, not {_shown(text)}")
    return value


def moment(name: str, raw: str | None) -> datetime | None:
    """An ISO date or timestamp as aware UTC (naive means UTC), years 1-9999."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return parse_time(name, raw)
    except FraudstreamError as exc:
        raise BadParam(str(exc)) from None


def duration(name: str, raw: str) -> float:
    """Seconds in ``48h`` / ``90m`` / ``3600s`` / ``2d`` (at most 100 years)."""
    try:
        return parse_duration(raw, name)
    except FraudstreamError as exc:
        raise BadParam(str(exc)) from None


def identifier(name: str, raw: str) -> str:
    """A transaction (or label) id: 1-:data:`MAX_ID_LENGTH` printable characters."""
    if not (0 < len(raw) <= MAX_ID_LENGTH and _ID.fullmatch(raw)):
        raise BadParam(
            f"{name}: not an id (1-{MAX_ID_LENGTH} characters, no control characters): "
            f"{_shown(raw)}"
        )
    return raw


def user_name(name: str, raw: str) -> str:
    """A desk user name: 1-64 letters, digits, ``.``, ``-`` or ``_``."""
    if not (0 < len(raw) <= MAX_NAME and _NAME.fullmatch(raw)):
        raise BadParam(f"{name}: not a user name (1-64 letters, digits, '.', '-', '_'): "
                       f"{_shown(raw)}")
    return raw


def text(name: str, raw: str, max_length: int) -> str:
    """Free text (a note): at most ``max_length`` characters, no NUL or control characters
    other than tab and line breaks."""
    if len(raw) > max_length:
        raise BadParam(f"{name} too long: {len(raw)} characters > {max_length}")
    if _TEXT_BAD.search(raw):
        raise BadParam(f"{name}: control characters are not allowed")
    return raw


def choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``."""
    if raw not in allowed:
        raise BadParam(f"{name} must be one of {', '.join(allowed)}, not {_shown(raw)}")
    return raw
