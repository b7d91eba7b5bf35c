"""The dashboard's figures: alerts per hour, queue size and age, disposition precision per day,
card precision per day (CP@k, :mod:`desk.card_precision`), matured confusion counts per model
version (:mod:`store.counts`), the score distribution."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Integer, and_, case, cast, func, select

from desk.card_precision import DEFAULT_CAPACITY, card_precision_days, mean_precision
from schemas.events import DATASET_EPOCH
from schemas.times import UNIX_EPOCH, as_utc, from_micros
from store.counts import matured_counts, maturity_cutoff, stream_clock
from store.settings import Maturity
from store.tables import alerts, keyed_transactions
from store.truth import current_labels

HOURS = 48
AGE_BUCKETS = (("< 1 h", 3600.0), ("1–24 h", 86400.0), ("> 24 h", None))


def _alerts_per_hour(engine: Engine) -> list[tuple[float, int]]:
    """(hour start in dataset seconds, alerts) for the last :data:`HOURS` hours of event time."""
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(alerts.c.time_s))).scalar()
        if latest is None:
            return []
        start = (int(latest // 3600) - HOURS + 1) * 3600.0
        starts = [start + 3600.0 * i for i in range(HOURS)]
        t = alerts.c.time_s
        columns = [
            func.coalesce(func.sum(case((and_(t >= h, t < h + 3600.0), 1), else_=0)), 0)
            for h in starts
        ]
        counts = conn.execute(select(*columns).where(t >= start)).one()
    return [(h, int(n)) for h, n in zip(starts, counts, strict=True)]


def _queue(engine: Engine, now: datetime) -> dict[str, Any]:
    """Alerts per status, and the unclosed ones by age and their oldest (one table scan)."""
    a = alerts.c
    ages = []
    for i, (_, limit) in enumerate(AGE_BUCKETS):
        lower = AGE_BUCKETS[i - 1][1] if i else None
        cond = [a.created_at > now - timedelta(seconds=limit)] if limit is not None else []
        if lower is not None:
            cond.append(a.created_at <= now - timedelta(seconds=lower))
        ages.append(func.coalesce(func.sum(case((and_(True, *cond), 1), else_=0)), 0))
    query = select(a.status, func.count(), func.min(a.created_at), *ages).group_by(a.status)
    with engine.connect() as conn:
        rows = {r[0]: r[1:] for r in conn.execute(query)}
    by_status = {s: int(rows[s][0]) if s in rows else 0 for s in ("open", "claimed", "closed")}
    unclosed = [rows[s] for s in ("open", "claimed") if s in rows]
    counts = [sum(int(r[2 + k]) for r in unclosed) for k in range(len(AGE_BUCKETS))]
    oldest = min((r[1] for r in unclosed if r[1] is not None), default=None)
    if oldest is not None:
        oldest = as_utc(oldest)
    return {
        "by_status": by_status,
        "age": [(label, int(n)) for (label, _), n in zip(AGE_BUCKETS, counts, strict=True)],
        "oldest_age_s": (now - oldest).total_seconds() if oldest else None,
    }


def _precision_per_day(engine: Engine, days: int = 14) -> list[dict[str, Any]]:
    """Per day of disposition (UTC): confirmed frauds, false positives and their precision."""
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    with engine.connect() as conn:
        rows = conn.execute(
            select(alerts.c.updated_at, alerts.c.disposition)
            .where(
                alerts.c.status == "closed",
                alerts.c.updated_at >= datetime.now(UTC) - timedelta(days=days),
                alerts.c.disposition.in_(("confirmed_fraud", "false_positive")),
            )
            .order_by(alerts.c.updated_at.desc())
            .limit(20000)
        )
        for at, disposition in rows:
            day = as_utc(at).date()
            per_day[day.isoformat()][0 if disposition == "confirmed_fraud" else 1] += 1
    out = [
        {"day": d, "fraud": f, "false_positive": fp, "precision": f / (f + fp)}
        for d, (f, fp) in sorted(per_day.items())
    ]
    return out[-days:]


#: Score bins of the alert histogram, in decades of distance from 0 and from 1 (log-odds-like):
#: alerts sit above a threshold and, for most models, very near 1 (or, under a low threshold,
#: spread over 0.01-0.5), so on equal-width bins every alert would fall into one bar.
SCORE_EDGES = (0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)


def score_bin_label(low: float) -> str:
    """A bin's label: its lower edge without the leading zero (``.9999``)."""
    return "0" if low == 0 else repr(low).lstrip("0")


def _scores(engine: Engine) -> list[tuple[str, int]]:
    """Alerts per score bin (:data:`SCORE_EDGES`; the last bin runs up to and including 1),
    from the first bin holding an alert to the last (empty bins between them kept)."""
    s = alerts.c.score
    bounds = [*SCORE_EDGES[1:], None]
    columns = [
        func.coalesce(func.sum(case((and_(s >= lo, s < hi) if hi is not None else s >= lo, 1),
                                    else_=0)), 0)
        for lo, hi in zip(SCORE_EDGES, bounds, strict=True)
    ]
    with engine.connect() as conn:
        counts = [int(n) for n in conn.execute(select(*columns)).one()]
    used = [i for i, n in enumerate(counts) if n]
    if not used:
        return []  # no alerts yet: the chart says so
    return [(score_bin_label(SCORE_EDGES[i]), counts[i]) for i in range(used[0], used[-1] + 1)]


CARD_DAYS = 14
_DAY_S = 86400.0


def _day_index(engine: Engine, seconds: Any) -> Any:
    """Whole days in ``seconds`` (>= 0) as SQL: floor on PostgreSQL (its CAST rounds),
    a truncating CAST on SQLite (which may lack floor)."""
    if engine.dialect.name == "postgresql":
        return cast(func.floor(seconds / _DAY_S), Integer)
    return cast(seconds / _DAY_S, Integer)


def card_precision(engine: Engine, mature: Maturity, k: int,
                   days: int = CARD_DAYS) -> dict[str, Any]:
    """CP@k per event-time day (UTC) over the last ``days`` days with keyed alerts
    (:func:`desk.card_precision.card_precision_days`): cards ranked by their highest alert score
    that day; compromised = a transaction of the card that day (a stored keyed transaction, or
    an alert) whose current label is fraud; mature once the day's end is ``mature`` behind the
    stream's clock (:func:`store.counts.stream_clock`)."""
    a = alerts.c
    day = _day_index(engine, a.time_s).label("day")
    with engine.connect() as conn:
        latest = conn.execute(select(func.max(a.time_s)).where(a.card_id.is_not(None))).scalar()
        if latest is None:
            return {"k": k, "days": [], "mean_precision": None, "as_of": None,
                    "mature_through": None, "mature_after": mature.text,
                    "maturity": mature.describe()}
        first = int(latest // _DAY_S) - days + 1
        start_s = first * _DAY_S
        keyed = a.card_id.is_not(None), a.time_s >= start_s
        rows = conn.execute(select(day, a.card_id, func.max(a.score), func.count())
                            .where(*keyed).group_by(day, a.card_id)).all()
        truth = current_labels()
        fraud = truth.c.is_fraud == 1
        alerted = conn.execute(select(a.card_id, a.time_s).select_from(alerts.join(
            truth, truth.c.transaction_id == a.transaction_id)).where(*keyed, fraud)).all()
        k_t = keyed_transactions.c
        start_us = int(((DATASET_EPOCH - UNIX_EPOCH).total_seconds() + start_s) * 1e6)
        stored = conn.execute(select(k_t.customer_id, k_t.time_us).select_from(
            keyed_transactions.join(truth, truth.c.transaction_id == k_t.transaction_id))
            .where(k_t.customer_id.is_not(None), k_t.time_us >= start_us, fraud)).all()
    origin = DATASET_EPOCH.date()
    scores: dict[date, dict[str, float]] = defaultdict(dict)
    counts: dict[date, int] = defaultdict(int)
    for index, card, score, n in rows:
        when = origin + timedelta(days=int(index))
        scores[when][card] = float(score)
        counts[when] += int(n)
    compromised = {(origin + timedelta(days=int(t // _DAY_S)), c) for c, t in alerted}
    compromised |= {(from_micros(t).date(), c) for c, t in stored}
    clock = stream_clock(engine)
    through = (maturity_cutoff(clock, mature.window).date() - timedelta(days=1)
               if clock is not None else None)
    per_day = card_precision_days(scores, counts, compromised, k, through)
    return {"k": k, "days": [d.to_dict() for d in per_day],
            "mean_precision": mean_precision(per_day), "as_of": clock,
            "mature_through": through.isoformat() if through else None,
            "mature_after": mature.text, "maturity": mature.describe()}


def dashboard(engine: Engine, mature: Maturity, capacity: int = DEFAULT_CAPACITY
              ) -> dict[str, Any]:
    """Every dashboard figure as plain data (the page draws it; the API returns it); the
    matured counts and CP@k on the deployment's label window ``mature``
    (:func:`store.settings.maturity`), which ``counts`` and ``models compare`` use too; CP@k
    for the team's daily ``capacity``."""
    now = datetime.now(UTC)
    counts = matured_counts(engine, mature.window)
    return {
        "generated_at": now,
        "alerts_per_hour": _alerts_per_hour(engine),
        "queue": _queue(engine, now),
        "precision": _precision_per_day(engine),
        "counts": {**counts.to_dict(), **mature.to_dict(), "maturity": mature.describe()},
        "card_precision": card_precision(engine, mature, capacity),
        "scores": _scores(engine),
    }
