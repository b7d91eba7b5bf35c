"""Confusion counts that mature honestly, computed from the decision log and the labels.

A decision's truth is its transaction's current label (:mod:`store.truth`). A decision without a
label is *mature* once its event time is ``mature_after`` older than the clock ``as_of`` (by
default the stream's clock: the latest event time decided, see :func:`stream_clock`), and then
counts as genuine — no
chargeback within the window means genuine; younger unlabelled decisions are ``pending``.
Counts are a pure function of the two logs, so re-delivered events, restarts and replays cannot
change them, and any figure can be recomputed offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, not_, or_, select

from store.tables import decisions
from store.truth import current_labels


@dataclass(frozen=True)
class CountRow:
    """Counts for one model version (and one event-time day with ``by_day``)."""

    model_version: int
    day: str | None
    decisions: int
    tp: int
    fp: int
    tn: int
    fn: int
    pending: int  # unlabelled, not yet mature
    labelled: int  # decisions whose transaction has a label
    fraud_amount: float  # sum of amounts of (labelled) frauds
    caught_amount: float  # ... of those the model flagged

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """The share of known frauds the model flagged."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def amount_caught(self) -> float | None:
        """The share of known fraud *amount* the model flagged."""
        return self.caught_amount / self.fraud_amount if self.fraud_amount else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall,
                "amount_caught": self.amount_caught}


@dataclass(frozen=True)
class CountsReport:
    as_of: datetime | None  # the clock maturity was judged against
    mature_after: timedelta
    rows: list[CountRow]
    orphans: int  # transactions with a label but no decision (never scored)

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat() if self.as_of else None,
                "mature_after_s": self.mature_after.total_seconds(),
                "rows": [r.to_dict() for r in self.rows], "orphans": self.orphans}


def _day(engine: Engine, column: Any) -> Any:
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite stores "YYYY-MM-DD HH:MM:SS..." in UTC


def maturity_cutoff(as_of: datetime, mature_after: timedelta) -> datetime:
    """The maturity rule: an unlabelled decision (or event) whose event time is at or before
    this instant is mature (counts as genuine); a later one is pending. Retraining
    (:mod:`trainer.retrain`) uses the same rule for events read back from Kafka."""
    return as_of - mature_after


def decided_by_all(versions: Sequence[int]) -> Any:
    """A condition on ``decisions`` rows: the row belongs to one of ``versions`` and its
    transaction was decided by every one of them (the common ground ``models compare`` uses)."""
    d = decisions.c
    condition = d.model_version.in_(list(versions))
    for version in versions:
        other = decisions.alias(f"decided_by_v{version}")
        condition = and_(condition, select(other.c.transaction_id).where(
            other.c.transaction_id == d.transaction_id, other.c.model_version == version)
            .exists())
    return condition


#: The stream's clock ignores the latest event times of at most one decision in this many (and
#: at most :data:`CLOCK_MAX_OUTLIERS`) when they stand more than :data:`CLOCK_GAP` ahead of the
#: rest.
CLOCK_OUTLIER_RATIO = 1000
CLOCK_MAX_OUTLIERS = 100
CLOCK_GAP = timedelta(hours=24)


def stream_clock(engine: Engine) -> datetime | None:
    """The latest event time in the decision log, robust to outliers (None when nothing was
    decided).

    Every decided event time is at most the scorer's ``--max-future-skew`` ahead of the wall
    clock (later events are dead letters), but one stray time that passed — an event dated
    today in a replay of 2013 — would still move a plain maximum and mature every pending
    decision at once. So the clock is the latest event time within :data:`CLOCK_GAP` of the
    ``k+1``-th latest, where ``k`` is one decision in :data:`CLOCK_OUTLIER_RATIO` (at most
    :data:`CLOCK_MAX_OUTLIERS`): a few times far ahead of the rest are ignored; a stream that
    really moved on moves the clock once more than ``k`` of its events are decided (until then
    decisions stay pending a little longer, never matured early). On clean data (no lone jump
    of a day) it is the plain maximum.
    """
    t = decisions.c.event_time
    with engine.connect() as conn:
        sample = select(literal(1)).select_from(decisions).limit(
            CLOCK_OUTLIER_RATIO * CLOCK_MAX_OUTLIERS).subquery()
        n = int(conn.execute(select(func.count()).select_from(sample)).scalar() or 0)
        if n == 0:
            return None
        edge = conn.execute(select(t).order_by(t.desc()).offset(n // CLOCK_OUTLIER_RATIO)
                            .limit(1)).scalar()
        return conn.execute(select(func.max(t)).where(t <= edge + CLOCK_GAP)).scalar()


def matured_counts(engine: Engine, mature_after: timedelta = timedelta(0), *,
                   as_of: datetime | None = None, by_day: bool = False,
                   common_to: Sequence[int] | None = None) -> CountsReport:
    """tp/fp/tn/fn per model version (and per event-time day) over labelled decisions plus
    mature unlabelled ones counted as genuine; ``pending`` the rest. ``common_to``: only those
    versions, on the transactions every one of them decided (:func:`decided_by_all`)."""
    as_of = as_of or stream_clock(engine)
    if as_of is None:
        return CountsReport(None, mature_after, [], _orphans(engine))
    d, truth = decisions.c, current_labels()
    fraud = truth.c.is_fraud == 1
    cutoff = maturity_cutoff(as_of, mature_after)
    genuine = or_(truth.c.is_fraud == 0,
                  and_(truth.c.is_fraud.is_(None), d.event_time <= cutoff))
    flag = d.flagged.is_(True)

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    day = _day(engine, d.event_time).label("day") if by_day else literal(None).label("day")
    query = (select(
        d.model_version, day, func.count().label("decisions"),
        total(and_(fraud, flag)).label("tp"), total(and_(genuine, flag)).label("fp"),
        total(and_(genuine, not_(flag))).label("tn"), total(and_(fraud, not_(flag))).label("fn"),
        total(and_(truth.c.is_fraud.is_(None), d.event_time > cutoff))
        .label("pending"),
        total(truth.c.is_fraud.is_not(None)).label("labelled"),
        func.coalesce(func.sum(case((fraud, d.amount), else_=0.0)), 0.0).label("fraud_amount"),
        func.coalesce(func.sum(case((and_(fraud, flag), d.amount), else_=0.0)), 0.0)
        .label("caught_amount"))
        .select_from(decisions.outerjoin(truth, truth.c.transaction_id == d.transaction_id)))
    if common_to is not None:
        query = query.where(decided_by_all(common_to))
    groups = [d.model_version, day] if by_day else [d.model_version]
    query = query.group_by(*groups).order_by(*groups)
    with engine.connect() as conn:
        rows = [CountRow(model_version=r.model_version, day=r.day, decisions=r.decisions,
                         tp=int(r.tp), fp=int(r.fp), tn=int(r.tn), fn=int(r.fn),
                         pending=int(r.pending), labelled=int(r.labelled),
                         fraud_amount=float(r.fraud_amount),
                         caught_amount=float(r.caught_amount))
                for r in conn.execute(query)]
    return CountsReport(as_of, mature_after, rows, _orphans(engine))


def _orphans(engine: Engine) -> int:
    truth = current_labels()
    query = select(func.count()).select_from(truth).where(~select(decisions.c.transaction_id)
        .where(decisions.c.transaction_id == truth.c.transaction_id).exists())
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)
