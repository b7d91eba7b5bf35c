"""Durations and times as users type them on the command line: ``48h``, ``90m``, ``3600s``,
``2d``; ``2013-09-02`` or ``2013-09-02T06:00``."""

from __future__ import annotations

import re
from datetime import datetime

from schemas.errors import FraudstreamError
from schemas.times import as_utc

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
#: The longest duration any flag or parameter takes (100 years): longer ones overflow dates.
MAX_DURATION_S = 36_500 * 86_400.0


def parse_duration(text: str, flag: str = "--labels") -> float:
    """Seconds in ``text``: a non-negative number and one unit of s, m, h or d (``48h`` ->
    172800.0, ``90m`` -> 5400.0, ``3600s``, ``2d``, ``1.5h``). FraudstreamError naming ``flag``
    otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise FraudstreamError(
            f"{flag}: bad duration {text[:40]!r} (use e.g. 48h, 90m, 3600s, 2d)"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise FraudstreamError(f"{flag}: duration {text[:40]!r} is longer than 36500d")
    return seconds


def parse_time(flag: str, value: str | None) -> datetime | None:
    """An ISO date or timestamp as an aware UTC datetime (naive means UTC); None stays None.
    FraudstreamError naming ``flag`` otherwise."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
        return as_utc(when)
    except (ValueError, OverflowError) as exc:  # OverflowError: 0001-01-01T00:00+01:00
        raise FraudstreamError(f"{flag}: not an ISO date or timestamp in years 1-9999: "
                               f"{value[:40]!r} (e.g. 2013-09-02 or 2013-09-02T06:00)") from exc
