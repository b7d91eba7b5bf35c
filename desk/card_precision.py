"""Card precision on the desk (pure): per day, CP@k for the team's capacity ``k`` — of the ``k``
cards the desk put first that day (ranked by the card's highest alert score that day,
:func:`models.evaluation.top_k_cards`, the ranking the trainer's CP@k uses), the share really
compromised (a transaction of the card that day whose current label is fraud: an analyst's
disposition or a chargeback).

A day counts once it is mature: its last instant is at least the deployment's maturity window
(:func:`store.settings.maturity`) behind the stream's clock, so an unlabelled transaction of it
counts as genuine; a younger day shows what is confirmed so far and no CP@k. CP@k divides by
``k`` even when fewer cards were alerted (unused capacity is not precision). Unlike the
trainer's offline CP@k, a card confirmed on an earlier day is not left out: the desk shows it
again when it alerts again, and each day's figure then depends on that day alone.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from models.evaluation import top_k_cards
from schemas.errors import FraudstreamError

DEFAULT_CAPACITY = 100


@dataclass(frozen=True)
class CardDay:
    """One day of card precision."""

    day: date
    alerts: int  # alerts with a card that day
    cards: int  # cards alerted that day
    k: int  # the capacity
    first: tuple[str, ...]  # the k cards put first (fewer when fewer were alerted)
    compromised: int  # of ``first``, cards really compromised that day (as labelled now)
    mature: bool

    @property
    def precision(self) -> float | None:
        """CP@k: ``compromised / k``; None until the day is mature."""
        return self.compromised / self.k if self.mature else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        out["first"] = list(self.first)
        return {**out, "precision": self.precision}


def card_precision_days(scores: Mapping[date, Mapping[str, float]],
                        alerts: Mapping[date, int],
                        compromised: Collection[tuple[date, str]], k: int,
                        mature_through: date | None) -> list[CardDay]:
    """Per day of ``scores`` (``{day: {card: highest alert score that day}}``), oldest first:
    the ``k`` cards put first and how many of them are in ``compromised`` (``(day, card)``
    pairs); ``alerts``: alerts per day; ``mature_through``: the last mature day (None: none)."""
    if k < 1:
        raise ValueError(f"capacity k must be >= 1, got {k}")
    out = []
    for day in sorted(scores):
        first = top_k_cards(scores[day], k)
        hits = sum((day, card) in compromised for card in first)
        out.append(CardDay(day, alerts.get(day, 0), len(scores[day]), k, tuple(first), hits,
                           mature_through is not None and day <= mature_through))
    return out


def mean_precision(days: list[CardDay]) -> float | None:
    """The mean CP@k over the mature days (None: no mature day)."""
    mature = [d.precision for d in days if d.precision is not None]
    return sum(mature) / len(mature) if mature else None


CAPACITY_ENV = "FRAUDSTREAM_DESK_CAPACITY"


def capacity(flag: int | str | None = None) -> int:
    """The team's daily capacity k: ``desk serve --capacity`` > ``$FRAUDSTREAM_DESK_CAPACITY``
    > :data:`DEFAULT_CAPACITY`; FraudstreamError naming where a bad value came from."""
    env = os.environ.get(CAPACITY_ENV, "").strip()
    if flag is not None and str(flag).strip():
        text, source = str(flag).strip(), "--capacity"
    elif env:
        text, source = env, f"${CAPACITY_ENV}"
    else:
        return DEFAULT_CAPACITY
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise FraudstreamError(f"{source}: the team's daily capacity is a whole number of cards "
                               f"from 1 to 1000000, got {text[:40]!r}")
    return int(text)
