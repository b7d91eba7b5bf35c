"""Durations as users type them on the command line: ``48h``, ``90m``, ``3600s``, ``2d``."""

from __future__ import annotations

import re

from schemas.errors import FraudstreamError

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str, flag: str = "--labels") -> float:
    """Seconds in ``text``: a non-negative number and one unit of s, m, h or d (``48h`` ->
    172800.0, ``90m`` -> 5400.0, ``3600s``, ``2d``, ``1.5h``). FraudstreamError naming ``flag``
    otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise FraudstreamError(f"{flag}: bad duration {text!r} (use e.g. 48h, 90m, 3600s, 2d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
