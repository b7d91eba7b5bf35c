"""Keyed scoring's store edges: read the state a batch needs (partition clocks, its cards'
windows, its terminals' delayed facts and the frauds known among them) and write the state it
changes, inside the batch's transaction with its decisions and offsets."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, bindparam, func, select

from schemas.behaviour import NEVER
from schemas.times import micros
from scorer.keyed_features import CardWindow, PartitionClock, Retention, TerminalFacts
from store.bulk import dialect_insert, insert_ignore, upsert
from store.columns import Columns
from store.sets import Among, rows_among
from store.tables import card_retention, card_state, keyed_transactions, labels, stream_clocks

_UNBOUNDED = 1 << 62


# The per-batch statements with only parameters changing are built once: building a small
# statement cost SQLAlchemy ~4x running it (229 vs 46 µs for load_retention's, on SQLite).
_CLOCKS = select(stream_clocks.c.partition, stream_clocks.c.clock_us, stream_clocks.c.bound_us
                 ).where(stream_clocks.c.group_id == bindparam("group_id"),
                         stream_clocks.c.topic == bindparam("topic"))
_RETENTION = select(card_retention.c.retention_us, card_retention.c.complete_from_us
                    ).where(card_retention.c.group_id == bindparam("group_id"))


def load_clocks(conn: Connection, group_id: str, topic: str) -> dict[int, PartitionClock]:
    rows = conn.execute(_CLOCKS, {"group_id": group_id, "topic": topic}).all()
    return {int(p): PartitionClock(int(clock), int(bound)) for p, clock, bound in rows}


def _cards(among: Among) -> Any:
    c = card_state.c
    return select(c.customer_id, c.times, c.amounts).where(
        c.group_id == bindparam("group_id"), among(c.customer_id))


def load_cards(conn: Connection, group_id: str, cards: Iterable[str]) -> dict[str, CardWindow]:
    # read-only views of the stored bytes (no copy where the machine is little-endian)
    return {card: CardWindow(np.frombuffer(times, dtype="<i8").astype(np.int64, copy=False),
                             np.frombuffer(amounts, dtype="<f8").astype(np.float64, copy=False))
            for card, times, amounts in rows_among(conn, _cards, cards, group_id=group_id)}


def load_retention(conn: Connection, group_id: str) -> Retention | None:
    row = conn.execute(_RETENTION, {"group_id": group_id}).first()
    return None if row is None else Retention(int(row[0]), int(row[1]))


def load_older(conn: Connection, before: Mapping[str, int], lo_us: int
               ) -> dict[str, CardWindow]:
    """The scored transactions (``keyed_transactions``: time, amount) of each card of
    ``before`` with time in ``(lo_us, before[card])``, in time order (rows written before 0009
    carry no card and are not found)."""
    rows: dict[str, list[tuple[int, float]]] = {}
    for card, t, amount in rows_among(conn, _older, before, lo_us=lo_us):
        if t < before[card]:
            rows.setdefault(card, []).append((int(t), float(amount)))
    return {card: CardWindow(np.array([t for t, _ in r], dtype=np.int64),
                             np.array([a for _, a in r], dtype=np.float64))
            for card, r in rows.items()}


def _older(among: Among) -> Any:
    k = keyed_transactions.c
    return select(k.customer_id, k.time_us, k.amount).where(
        among(k.customer_id), k.time_us > bindparam("lo_us")
    ).order_by(k.time_us, k.transaction_id)


def label_mark(engine: Engine, group_id: str, ends: Mapping[tuple[str, int], int]) -> int:
    """Up to which event time (µs, exclusive) the label sink ``group_id`` has stored every
    label of its topic, given the topic's end offsets ``ends`` (read after the batch was
    fetched: a label observed by a transaction's time was published before it): no limit when
    it has committed every partition up to its end; else the earliest, over the partitions it
    lags on, of the latest ``observed_at`` it stored from them (a partition's labels arrive in
    observation order)."""
    from stream.offsets import load

    stored = load(engine, group_id, ends)
    lagging = [tp for tp, end in ends.items()
               if (stored[tp].next_offset if tp in stored else 0) < end]
    lc, marks = labels.c, [_UNBOUNDED]
    with engine.connect() as conn:
        for topic, partition in lagging:
            latest = conn.execute(select(func.max(lc.observed_at)).where(
                lc.source_topic == topic, lc.source_partition == partition)).scalar()
            marks.append(-_UNBOUNDED if latest is None else micros(latest))
    return min(marks)


def load_facts(conn: Connection, terminals: Iterable[str], lo_us: int, hi_us: int,
               exclude: set[str]) -> tuple[TerminalFacts, dict[str, int]]:
    """The stored transactions of ``terminals`` with time in ``(lo_us, hi_us]`` (less those in
    ``exclude``), and when every fraud among them and ``exclude`` became known (the stored
    transactions' first fraud labels looked up by the database in the same query, through the
    labels' transaction index: no ids sent back and forth)."""
    terms, times, known_at = [], [], []
    known: dict[str, int] = {}
    for tid, term, t, first in rows_among(conn, _facts, terminals, lo_us=lo_us, hi_us=hi_us):
        if tid not in exclude:
            terms.append(term)
            times.append(int(t))
            known_at.append(NEVER if first is None else micros(first))
            if first is not None:
                known[tid] = known_at[-1]
    known |= _known(conn, list(exclude))
    facts = TerminalFacts(np.array(terms, dtype=object), np.array(times, dtype=np.int64),
                          np.array(known_at, dtype=np.int64))
    return facts, known


def _facts(among: Among) -> Any:
    k, lc = keyed_transactions.c, labels.c
    first_fraud = select(func.min(lc.observed_at)).where(
        lc.transaction_id == k.transaction_id, lc.is_fraud == 1).scalar_subquery()
    return select(k.transaction_id, k.terminal_id, k.time_us, first_fraud).where(
        among(k.terminal_id), k.time_us > bindparam("lo_us"), k.time_us <= bindparam("hi_us"))


def fraud_known(engine: Engine, ids: Iterable[str]) -> dict[str, int]:
    """When each of ``ids`` became known fraud (µs): the point-in-time rule of keyed scoring,
    which retraining from the stream applies to the events it reads back."""
    with engine.connect() as conn:
        return _known(conn, list(ids))


def _known(conn: Connection, ids: list[str]) -> dict[str, int]:
    """When each of ``ids`` became known fraud: its first fraud label's ``observed_at``."""
    return {tid: micros(first) for tid, first in rows_among(conn, _first_frauds, ids)}


def _first_frauds(among: Among) -> Any:
    lc = labels.c
    return select(lc.transaction_id, func.min(lc.observed_at)).where(
        among(lc.transaction_id), lc.is_fraud == 1).group_by(lc.transaction_id)


def write_state(conn: Connection, group_id: str, topic: str,
                cards: Mapping[str, CardWindow], facts: list[dict[str, Any]],
                clocks: Mapping[int, PartitionClock], retention: Retention | None = None
                ) -> None:
    """Write the batch's state changes: card windows, terminal facts, partition clocks (which
    only move forward) and the group's card retention when it changed (``retention``)."""
    if retention is not None:
        upsert(conn, card_retention, [{"group_id": group_id, **vars(retention)}],
               ["group_id"], ["retention_us", "complete_from_us"])
    names = sorted(cards)
    windows = [cards[card] for card in names]
    upsert(conn, card_state, Columns({
        "group_id": [group_id] * len(names), "customer_id": names,
        "latest_us": [w.latest for w in windows],
        "times": [w.times.astype("<i8", copy=False).tobytes() for w in windows],
        "amounts": [w.amounts.astype("<f8", copy=False).tobytes() for w in windows]}),
        ["group_id", "customer_id"], ["latest_us", "times", "amounts"])
    insert_ignore(conn, keyed_transactions, facts)
    if clocks:  # one statement for every partition; a clock only moves forward
        conn.execute(_clocks_upsert(conn.dialect.name),
                     [{"group_id": group_id, "topic": topic, "partition": partition,
                       "clock_us": clock.clock_us, "bound_us": clock.bound_us}
                      for partition, clock in sorted(clocks.items())])


@functools.cache
def _clocks_upsert(dialect: str) -> Any:
    """The partition clocks' upsert in ``dialect``: a clock only moves forward."""
    later = func.greatest if dialect == "postgresql" else func.max
    stmt = dialect_insert(dialect, stream_clocks)
    c = stream_clocks.c
    return stmt.on_conflict_do_update(
        index_elements=[c.group_id, c.topic, c.partition],
        set_={"clock_us": later(c.clock_us, stmt.excluded.clock_us),
              "bound_us": later(c.bound_us, stmt.excluded.bound_us)})
