"""Keyed scoring's pure middle: which events of a batch may be scored now, their behaviour
features (through the one implementation, :func:`schemas.behaviour.compute`) and the cards' new
window state. No I/O: the state read from the store comes in, the state to write goes out.

The features of a batch are computed over a small :class:`schemas.behaviour.History` made of
(1) each batch card's stored transactions (its windows), (2) the stored transactions of the
batch's terminals inside their delayed windows, with the times their frauds became known, and
(3) the batch's own events. Stored card rows get a terminal code no event has, stored terminal
rows a card code no event has, so each counts in its own family of windows only: the numbers are
those :func:`compute` gives over the whole history, since a window sees nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.behaviour import DAY_US, NEVER, BehaviourSpec, History, compute

_NO_TIME = -(1 << 62)
EMPTY_I = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class CardWindow:
    """A card's transactions inside the longest window, in history order."""

    times: np.ndarray  # (k,) int64 µs
    amounts: np.ndarray  # (k,) float64

    @property
    def latest(self) -> int:
        """The latest transaction's time (history order: the last)."""
        return int(self.times[-1]) if len(self.times) else -(1 << 62)


@dataclass(frozen=True)
class TerminalFacts:
    """Stored keyed transactions of some terminals (not of this batch) and when each became
    known fraud (µs, :data:`schemas.behaviour.NEVER` if not known)."""

    terminal_id: np.ndarray  # (m,) object
    time_us: np.ndarray  # (m,) int64
    fraud_known: np.ndarray  # (m,) int64

    @classmethod
    def empty(cls) -> TerminalFacts:
        return cls(np.zeros(0, dtype=object), EMPTY_I, EMPTY_I)


@dataclass(frozen=True)
class PartitionClock:
    clock_us: int  # the latest event time committed
    bound_us: int  # nothing not yet committed is earlier


def retention_us(spec: BehaviourSpec, lateness_us: int) -> int:
    """How far back from a card's latest transaction its state must reach."""
    return max((*spec.customer_windows_days, 0)) * DAY_US + lateness_us


@dataclass(frozen=True)
class Retention:
    """How far back a group's card state reaches (µs before each card's latest transaction),
    and the event time from which every card's state is complete for it: an earlier event's
    card may miss older rows (written under a shorter retention), read back from the store."""

    retention_us: int
    complete_from_us: int


def retention_for(stored: Retention | None, wanted_us: int, clock_us: int | None) -> Retention:
    """The group's retention for a batch whose model(s) need ``wanted_us`` (``clock_us``: the
    latest event time the group committed, None: nothing yet). It never shrinks (a rollback to
    longer windows then needs nothing rebuilt). When it grows from R to R' at clock c, a card
    last seen at l <= c holds (l - R, l]; an event at t needs (t - R', t], which that covers
    once t >= c + (R' - R). A group with no record but a clock (state written before retention
    was recorded) is taken as complete only a whole retention after its clock."""
    if stored is None:
        return Retention(wanted_us, _NO_TIME if clock_us is None else clock_us + wanted_us)
    if wanted_us <= stored.retention_us:
        return stored
    start = _NO_TIME if clock_us is None else clock_us + wanted_us - stored.retention_us
    return Retention(wanted_us, max(stored.complete_from_us, start))


def with_older(cards: Mapping[str, CardWindow],
               older: Mapping[str, CardWindow]) -> dict[str, CardWindow]:
    """Each card's window with ``older`` rows (all before its earliest stored one) in front."""
    out = dict(cards)
    for card, rows in older.items():
        if len(rows.times) and card in out:
            out[card] = CardWindow(np.concatenate([rows.times, out[card].times]),
                                   np.concatenate([rows.amounts, out[card].amounts]))
    return out


def terminal_span_us(specs: Sequence[BehaviourSpec], times: np.ndarray) -> tuple[int, int]:
    """(lo, hi]: the event times the delayed terminal windows of events at ``times`` cover
    (for every model of ``specs``)."""
    reach = max((s.delay_days + max((*s.terminal_windows_days, 0))) * DAY_US for s in specs)
    return (int(times.min()) - reach,
            int(times.max()) - min(s.delay_days for s in specs) * DAY_US)


def ready_before(specs: Sequence[BehaviourSpec], partition: int,
                 clocks: Mapping[int, PartitionClock], partitions: Sequence[int],
                 labels_until_us: int | None = None) -> int | None:
    """The event time (µs, exclusive) before which an event of ``partition`` may be scored now
    by every model of ``specs`` (None: any time). Its terminal windows end at ``time_us - D``:
    every other partition must have committed everything up to there (its bound is later), so
    that nothing still to come could fall inside them — the earliest other bound plus the
    shortest D; and with ``labels_until_us`` (the label sink has stored every label observed
    before it) the frauds known by ``time_us`` must all be in the store."""
    delays = [s.delay_days for s in specs if s.terminal_windows_days]
    if not delays:
        return None
    delay_us = min(delays) * DAY_US
    limits = [] if labels_until_us is None else [labels_until_us]
    for q in partitions:
        if q != partition:
            limits.append(clocks[q].bound_us + delay_us if q in clocks else _NO_TIME)
    return min(limits, default=None)


def batch_inputs(spec: BehaviourSpec, events: Sequence[Mapping[str, Any]],
                 cards: Mapping[str, CardWindow], facts: TerminalFacts,
                 known: Mapping[str, int]) -> np.ndarray:
    """``(n, len(spec.input_names()))`` model inputs of ``events`` (dicts with
    ``transaction_id``, ``customer_id``, ``terminal_id``, ``time_us``, ``amount``; in partition
    order), given the cards' stored windows, the terminals' stored facts and ``known``: when
    each event of the batch became known fraud (absent: not known)."""
    n = len(events)
    if n == 0:
        return np.zeros((0, len(spec.input_names())), dtype=np.float64)
    customers = [e["customer_id"] for e in events]
    card_codes = {c: i for i, c in enumerate(dict.fromkeys(customers))}
    terminals = dict.fromkeys([e["terminal_id"] for e in events])
    terminal_codes = {t: i for i, t in enumerate(dict.fromkeys([*terminals,
                                                                *facts.terminal_id]))}
    no_card, no_terminal = len(card_codes), len(terminal_codes)
    parts_time, parts_card, parts_terminal, parts_amount, parts_known = [], [], [], [], []
    windows = [(code, w) for card, code in card_codes.items()  # (1) the cards' windows:
               if (w := cards.get(card)) is not None and len(w.times)]  # card windows only
    if windows:
        lengths = np.array([len(w.times) for _, w in windows])
        k = int(lengths.sum())
        parts_time.append(np.concatenate([w.times for _, w in windows]))
        parts_card.append(np.repeat(np.array([code for code, _ in windows]), lengths))
        parts_terminal.append(np.full(k, no_terminal))
        parts_amount.append(np.concatenate([w.amounts for _, w in windows]))
        parts_known.append(np.full(k, NEVER))
    if len(facts.time_us):  # (2) the terminals' facts: terminal windows only
        m = len(facts.time_us)
        parts_time.append(facts.time_us)
        parts_card.append(np.full(m, no_card))
        parts_terminal.append(np.array([terminal_codes[t] for t in facts.terminal_id]))
        parts_amount.append(np.zeros(m))
        parts_known.append(facts.fraud_known)
    first_event = sum(len(p) for p in parts_time)
    parts_time.append(np.array([e["time_us"] for e in events], dtype=np.int64))  # (3) the batch
    parts_card.append(np.array([card_codes[c] for c in customers]))
    parts_terminal.append(np.array([terminal_codes[e["terminal_id"]] for e in events]))
    parts_amount.append(np.array([e["amount"] for e in events], dtype=np.float64))
    parts_known.append(np.array([known.get(e["transaction_id"], NEVER) for e in events],
                                dtype=np.int64))
    time_us = np.concatenate(parts_time).astype(np.int64)
    order = np.argsort(time_us, kind="stable")  # stored rows before the batch at equal times
    history = History(time_us=time_us[order],
                      customer=np.concatenate(parts_card).astype(np.int64)[order],
                      terminal=np.concatenate(parts_terminal).astype(np.int64)[order],
                      amount=np.concatenate(parts_amount).astype(np.float64)[order],
                      fraud_known=np.concatenate(parts_known).astype(np.int64)[order])
    features = compute(spec, history)
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    rows = features[where[first_event:]]
    return np.column_stack([history.amount[where[first_event:]], rows])


def updated_cards(events: Sequence[Mapping[str, Any]], cards: Mapping[str, CardWindow],
                  keep_us: int) -> dict[str, CardWindow]:
    """The new window of every card of ``events``: its stored transactions and the batch's, in
    history order (ties: stored first, then the batch's in partition order), without those at
    or before ``keep_us`` before its latest one. One stable sort of the whole batch by (card,
    time), not one per card."""
    n = len(events)
    if n == 0:
        return {}
    customers = [e["customer_id"] for e in events]
    names = list(dict.fromkeys(customers))  # card code = position
    code = {card: i for i, card in enumerate(names)}
    stored = [cards.get(card) for card in names]
    lengths = np.array([0 if w is None else len(w.times) for w in stored], dtype=np.int64)
    times = np.concatenate([*(w.times for w in stored if w is not None),
                            np.fromiter((e["time_us"] for e in events), np.int64, n)])
    amounts = np.concatenate([*(w.amounts for w in stored if w is not None),
                              np.fromiter((e["amount"] for e in events), np.float64, n)])
    codes = np.concatenate([np.repeat(np.arange(len(names)), lengths),
                            np.fromiter(map(code.__getitem__, customers), np.int64, n)])
    order = np.lexsort((times, codes))  # stable: stored rows first, then the batch's order
    times, amounts, codes = times[order], amounts[order], codes[order]
    stops = np.cumsum(np.bincount(codes, minlength=len(names)))
    latest = times[stops - 1]
    keep = times > (latest - keep_us)[codes]
    times, amounts = times[keep], amounts[keep]
    stops = np.cumsum(np.bincount(codes[keep], minlength=len(names))).tolist()
    starts = [0, *stops[:-1]]
    return {card: CardWindow(times[a:b], amounts[a:b])
            for card, a, b in zip(names, starts, stops, strict=True)}
