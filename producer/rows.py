"""One ``creditcard.csv`` row as a ``transaction.v1`` event, for the replay: why a row is invalid
(the slow path, for rows the fast path rejects), the event's %-format template, and the check
that a row's fields are JSON number literals as written (so their text can be sent as is)."""

from __future__ import annotations

import math
import re
from operator import itemgetter

from schemas.features import CSV_COLUMNS, EVENT_NUMBERS


def invalid_reason(fields: list[str], ncols: int, get: itemgetter, labels: bool) -> str | None:
    """Why a row is invalid (None if valid). Slow path: only rows the fast path rejects."""
    if not fields or (len(fields) == 1 and not fields[0].strip()):
        return "empty line"
    if len(fields) != ncols:
        return f"expected {ncols} fields, got {len(fields)}"
    checked = CSV_COLUMNS if labels else CSV_COLUMNS[:-1]
    for name, text in zip(checked, get(fields), strict=False):
        try:
            value = float(text)
        except ValueError:
            return f"{name}: not a number ({text[:20]!r})"
        if not math.isfinite(value):
            return f"{name}: not finite ({text[:20]!r})"
        if name in ("Time", "Amount") and value < 0:
            return f"{name}: negative ({text[:20]!r})"
        if name == "Class" and value not in (0.0, 1.0):
            return f"Class: must be 0 or 1 ({text[:20]!r})"
    return None


def event_template(labels: bool, conversion: str) -> str:
    """%-format template of one event: (transaction_id, time_s, v1..v28, amount[, is_fraud]).

    ``conversion`` is ``s`` (the fields' source text, already checked to be JSON numbers) or
    ``r`` (Python floats, whose repr is what ``json.dumps`` would write).
    """
    body = ",".join(f'"{name}":%{conversion}' for name in EVENT_NUMBERS)
    tail = ',"is_fraud":%d}' if labels else "}"
    return '{"schema_version":1,"transaction_id":"%s",' + body + tail


_OTHER_CHARS = re.compile(r"[^0-9.eE+\-,]")
_LEADING_ZERO = re.compile(r",-?0[0-9]")


def json_numbers(joined: str) -> bool:
    """True if every field of a comma-joined row, each already parsed by ``float()`` as finite,
    is also a JSON number literal (rejects whitespace, "_", "+1", ".5", "5.", "007", ...)."""
    s = f",{joined},"
    return not (_OTHER_CHARS.search(s) or ",+" in s or ",." in s or ",-." in s or ".," in s
                or ".e" in s or ".E" in s or _LEADING_ZERO.search(s))
