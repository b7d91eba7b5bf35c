"""A keyed alert's explanation in words (pure): each behaviour feature the model saw
(:mod:`schemas.behaviour`'s names, the values stored with the alert in ``alerts.feature_values``)
as a sentence an analyst can check — "card: 9 transactions in the last 24 h (usual 1.2)",
"terminal: 31 % of its 120 transactions 7–14 days ago were known fraud" — with its value and, for
the features the model's explanation names, its contribution.

"Usual" is defined from the same vector, never recomputed: for a card window of ``w`` days
shorter than the card's longest window ``W``, the usual count is the longest window's count
scaled to ``w`` days (``count_W × w / W``: its per-day rate, the current transaction included),
and the usual mean amount is the longest window's mean amount. The longest window is the
baseline itself and has no usual level. Terminal windows end ``D`` days before the transaction
(``D``: the spec's delay, the time until a fraud becomes known): their sentences say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.behaviour import BehaviourSpec

_WINDOW = re.compile(r"^(customer|terminal)_(count|mean_amount|risk)_(\d+)d$")
#: A card window whose count is at least this many times its usual level is called unusual.
UNUSUAL_RATIO = 2.0


@dataclass(frozen=True)
class Window:
    """One window of the card or terminal, as the feature names spell it."""

    family: str  # "customer" | "terminal"
    measure: str  # "count" | "mean_amount" | "risk"
    days: int


def parse_window(name: str) -> Window | None:
    """``customer_count_7d`` → Window("customer", "count", 7); None for other names."""
    found = _WINDOW.match(name)
    return Window(found[1], found[2], int(found[3])) if found else None


def span(days: int) -> str:
    """``1`` → "24 h", ``7`` → "7 days"."""
    return "24 h" if days == 1 else f"{days} days"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _transactions(count: float) -> str:
    """``9 transactions``, ``1 transaction``."""
    return f"{_num(count)} transaction{'' if count == 1 else 's'}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def longest(values: Mapping[str, float], family: str, measure: str) -> int | None:
    """The longest window (days) of ``family``/``measure`` present in ``values``."""
    days = [w.days for w in map(parse_window, values) if w and w.family == family
            and w.measure == measure]
    return max(days, default=None)


def usual(name: str, values: Mapping[str, float]) -> float | None:
    """The usual level of a card window (see the module's note); None for the longest window,
    for other features, or when the longest window is not in ``values``."""
    w = parse_window(name)
    if w is None or w.family != "customer":
        return None
    top = longest(values, "customer", w.measure)
    if top is None or top == w.days:
        return None
    base = values.get(f"customer_{w.measure}_{top}d")
    if base is None:
        return None
    return base * w.days / top if w.measure == "count" else base


def terminal_ago(days: int, delay_days: int) -> str:
    """The terminal window ``(t - D - w, t - D]`` in words: "7–14 days ago"."""
    return f"{delay_days}–{delay_days + days} days ago"


def sentence(name: str, values: Mapping[str, float], spec: BehaviourSpec) -> str:
    """The feature ``name``'s value in ``values`` in words (its name and value when the name is
    not a behaviour feature)."""
    value = float(values[name])
    w = parse_window(name)
    if name == "amount":
        return f"amount: {_money(value)}"
    if name == "weekend":
        return "on a weekend (Saturday or Sunday, UTC)" if value else "on a weekday"
    if name == "night":
        return (f"at night (before {spec.night_end_hour:02d}:00 UTC)" if value
                else f"in the daytime ({spec.night_end_hour:02d}:00 UTC or later)")
    if w is None:
        return f"{name}: {_num(value)}"
    normal = usual(name, values)
    if w.family == "customer" and w.measure == "count":
        per_day = "" if w.days == 1 else f", {_num(round(value / w.days, 1))} a day"
        tail = (f" (usual {_num(round(normal, 1))})" if normal is not None
                else f" (the baseline{per_day})")
        return f"card: {_transactions(value)} in the last {span(w.days)}{tail}"
    if w.family == "customer":
        tail = f" (usual {_money(normal)})" if normal is not None else " (the baseline)"
        return f"card: mean amount {_money(value)} over the last {span(w.days)}{tail}"
    ago = terminal_ago(w.days, spec.delay_days)
    if w.measure == "count":
        return f"terminal: {_transactions(value)} {ago}"
    count = values.get(f"terminal_count_{w.days}d")
    if count == 0:
        return f"terminal: no transactions {ago}, so no known fraud"
    of = f"its {_transactions(count)}" if count is not None else "its transactions"
    verb = "was" if count == 1 else "were"
    return (f"terminal: {value * 100:.0f} % of {of} {ago} {verb} known fraud "
            f"(fraud is known {span(spec.delay_days)} after)")


def unusual(name: str, values: Mapping[str, float]) -> bool:
    """A card count at least :data:`UNUSUAL_RATIO` × its usual level, a card mean amount as
    far above its usual, or a terminal with any known fraud."""
    w = parse_window(name)
    value = values.get(name)
    if w is None or value is None:
        return False
    if w.family == "terminal":
        return w.measure == "risk" and value > 0
    normal = usual(name, values)
    return normal is not None and normal > 0 and value >= UNUSUAL_RATIO * normal


def worded(values: Mapping[str, float] | None,
           explanation: Sequence[Mapping[str, Any]] | None,
           spec: BehaviourSpec) -> list[dict[str, Any]]:
    """Every feature the model saw, in words: the ones that contributed first (the explanation's
    order, with their non-zero ``contribution``), then the others (``contribution`` None: not
    in the explanation, or in it with a contribution of exactly zero). Each entry: ``feature``,
    ``sentence``, ``value``, ``usual`` (card windows), ``unusual``, ``contribution``. Empty
    when the alert was stored without values."""
    if not values:
        return []
    contributions = {c["feature"]: float(c["contribution"]) for c in explanation or []
                     if float(c["contribution"]) != 0.0}
    names = [n for n in contributions if n in values]
    names += [n for n in values if n not in contributions]
    return [{"feature": n, "sentence": sentence(n, values, spec), "value": float(values[n]),
             "usual": usual(n, values), "unusual": unusual(n, values),
             "contribution": contributions.get(n)} for n in names]


def rest_contributed_nothing(explanation: Sequence[Mapping[str, Any]] | None) -> bool:
    """True when the explanation (the model's top contributions by size) names a feature with a
    zero contribution: every feature it leaves out then contributed nothing either."""
    return any(float(c["contribution"]) == 0.0 for c in explanation or [])


def windows(values: Mapping[str, float] | None, family: str) -> list[dict[str, Any]]:
    """The windows of ``family`` (``customer``: count and mean amount with their usual levels;
    ``terminal``: count and known-fraud share), shortest first, from the stored vector."""
    if not values:
        return []
    second = "mean_amount" if family == "customer" else "risk"
    days = sorted({w.days for w in map(parse_window, values) if w and w.family == family})
    out = []
    for d in days:
        count, other = f"{family}_count_{d}d", f"{family}_{second}_{d}d"
        out.append({"days": d, "span": span(d), "count": values.get(count),
                    "usual_count": usual(count, values), second: values.get(other),
                    f"usual_{second}": usual(other, values),
                    "unusual": unusual(count, values) or unusual(other, values)})
    return out
