"""The desk's read side: the alert queue (filters, keyset pagination) and one alert's detail.

Pagination is by keyset, not OFFSET: a page is "the next ``limit`` alerts after this cursor" in
the queue's order, so page 1000 costs what page 1 costs. The orders and filters match the
indexes of migration 0005 (``status`` first, then ``time_s`` or ``score``, then the key).
Filters arrive as text (query strings) and are checked by :func:`parse_filter`, which says what
is wrong in one line (:class:`BadFilter`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Engine, select, tuple_

from desk import params as p
from desk.card_view import card_view, keyed_spec
from desk.explain import explained_features
from schemas.events import DATASET_EPOCH, event_time
from store.queries import transaction_story
from store.tables import alerts, desk_audit, model_versions
from store.truth import latest_label

Status = Literal["open", "claimed", "closed"]
LabelFilter = Literal["fraud", "genuine", "none"]
LABEL_FILTERS: tuple[LabelFilter, ...] = ("fraud", "genuine", "none")
STATUSES: tuple[Status, ...] = ("open", "claimed", "closed")
Order = Literal["newest", "score"]
MAX_PAGE = 200
QUEUE_COLUMNS = (
    "transaction_id",
    "model_version",
    "score",
    "threshold",
    "amount",
    "time_s",
    "status",
    "assignee",
    "disposition",
    "created_at",
    "revision",
)


#: A query-string filter that cannot be used (the message says which and why).
BadFilter = p.BadParam


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. None = no filter; ``status`` None = every status."""

    status: Status | None = "open"
    order: Order = "newest"
    min_score: float | None = None
    max_score: float | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    since: datetime | None = None  # event time, inclusive
    until: datetime | None = None  # event time, exclusive
    model_version: int | None = None
    assignee: str | None = None
    label: LabelFilter | None = None  # the transaction's current label; "none" = unlabelled
    limit: int = 50
    cursor: str | None = None

    def query_string(self, **change: Any) -> dict[str, str]:
        """These filters (with ``change`` applied) as query-string parameters."""
        f = replace(self, **change)
        out = {"status": f.status or "all", "order": f.order, "limit": str(f.limit)}
        for name in (
            "min_score",
            "max_score",
            "min_amount",
            "max_amount",
            "model_version",
            "assignee",
            "label",
            "cursor",
        ):
            value = getattr(f, name)
            if value is not None:
                out[name] = str(value)
        for name in ("since", "until"):
            value = getattr(f, name)
            if value is not None:
                out[name] = value.isoformat()
        return out


def parse_filter(query: Mapping[str, str]) -> QueueFilter:
    """A :class:`QueueFilter` from query-string ``query``; :class:`BadFilter` if malformed."""
    status = p.choice("status", (query.get("status") or "open").strip(), (*STATUSES, "all"))
    order = p.choice("order", (query.get("order") or "newest").strip(), ("newest", "score"))
    label = p.choice("label", (query.get("label") or "").strip(), ("", *LABEL_FILTERS)) or None
    huge = 1e15
    assignee = (query.get("assignee") or "").strip() or None
    limit = p.whole("limit", query.get("limit"), 1, MAX_PAGE)
    f = QueueFilter(
        status=None if status == "all" else status,  # type: ignore[arg-type]
        order=order,  # type: ignore[arg-type]
        min_score=p.number("min_score", query.get("min_score"), 0, 1),
        max_score=p.number("max_score", query.get("max_score"), 0, 1),
        min_amount=p.number("min_amount", query.get("min_amount"), 0, huge),
        max_amount=p.number("max_amount", query.get("max_amount"), 0, huge),
        since=p.moment("since", query.get("since")),
        until=p.moment("until", query.get("until")),
        model_version=p.whole("model_version", query.get("model_version")),
        assignee=None if assignee is None else p.user_name("assignee", assignee),
        limit=50 if limit is None else limit,
        cursor=(query.get("cursor") or "").strip() or None,
        label=label,  # type: ignore[arg-type]
    )
    for low, high, what in (
        (f.min_score, f.max_score, "score"),
        (f.min_amount, f.max_amount, "amount"),
        (f.since, f.until, "time"),
    ):
        if low is not None and high is not None and low > high:  # type: ignore[operator]
            raise BadFilter(f"the {what} range is empty (its lower bound is above its upper)")
    if f.cursor is not None:
        decode_cursor(f.cursor)
    return f


def encode_cursor(row: Mapping[str, Any], order: Order) -> str:
    key = [
        row["time_s"] if order == "newest" else row["score"],
        row["transaction_id"],
        row["model_version"],
    ]
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str, int]:
    """The keyset position in a cursor :func:`encode_cursor` made; its parts within the bounds
    of what the store holds (a finite number, an id, a model version), else :class:`BadFilter`."""
    try:
        if len(cursor) > 1024:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, tx, version = orjson.loads(raw)
        if not (isinstance(value, int | float) and isinstance(tx, str) and type(version) is int):
            raise ValueError
        p.number("cursor", str(value), -1e300, 1e300)
        p.identifier("cursor", tx)
        p.whole("cursor", version)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadFilter("cursor: not a cursor this queue handed out") from None
    return float(value), tx, version


def _seconds(when: datetime) -> float:
    return (when - DATASET_EPOCH).total_seconds()


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def list_queue(engine: Engine, f: QueueFilter) -> Page:
    """One page of alerts matching ``f`` in its order, and the cursor of the next page."""
    a = alerts.c
    label = latest_label(a.transaction_id, "is_fraud")
    query = select(
        *(a[name] for name in QUEUE_COLUMNS),
        label.label("label_is_fraud"),
        latest_label(a.transaction_id, "source").label("label_source"),
        latest_label(a.transaction_id, "observed_at").label("label_observed_at"),
    )
    if f.label == "none":
        query = query.where(label.is_(None))
    elif f.label is not None:
        query = query.where(label == (1 if f.label == "fraud" else 0))
    if f.status is not None:
        query = query.where(a.status == f.status)
    conditions = (
        (f.min_score, a.score.__ge__),
        (f.max_score, a.score.__le__),
        (f.min_amount, a.amount.__ge__),
        (f.max_amount, a.amount.__le__),
        (f.model_version, a.model_version.__eq__),
        (f.assignee, a.assignee.__eq__),
    )
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    if f.since is not None:
        query = query.where(a.time_s >= _seconds(f.since))
    if f.until is not None:
        query = query.where(a.time_s < _seconds(f.until))
    sort = a.time_s if f.order == "newest" else a.score
    key = tuple_(sort, a.transaction_id, a.model_version)
    if f.cursor is not None:
        query = query.where(key < tuple_(*decode_cursor(f.cursor)))
    query = query.order_by(sort.desc(), a.transaction_id.desc(), a.model_version.desc())
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query.limit(f.limit + 1))]
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    for row in rows:
        row["event_time"] = event_time(row["time_s"])
        flag = row.pop("label_is_fraud")
        row["label"] = None if flag is None else ("fraud" if flag else "genuine")
    return Page(rows, encode_cursor(rows[-1], f.order) if more and rows else None)


def newer_count(engine: Engine, after_time_s: float, status: Status | None = "open") -> int:
    """How many alerts (of ``status``) have an event time after ``after_time_s`` (at most 100):
    what the queue polls to say "N new alerts"."""
    query = select(alerts.c.transaction_id).where(alerts.c.time_s > after_time_s)
    if status is not None:
        query = query.where(alerts.c.status == status)
    with engine.connect() as conn:
        return len(conn.execute(query.limit(100)).all())


def audit_trail(engine: Engine, transaction_id: str, model_version: int) -> list[dict[str, Any]]:
    """The audit entries of one alert, oldest first."""
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                select(desk_audit)
                .where(
                    desk_audit.c.transaction_id == transaction_id,
                    desk_audit.c.model_version == model_version,
                )
                .order_by(desk_audit.c.id)
            )
        ]


def alert_detail(engine: Engine, transaction_id: str, model_version: int) -> dict[str, Any] | None:
    """One alert with everything the detail page shows (None if there is no such alert): its
    row (incl. ``explanation``), the transaction's label history and decisions, its audit;
    ``card``: for a keyed model's alert, :func:`desk.card_view.card_view` (None for ULB)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(alerts).where(
                alerts.c.transaction_id == transaction_id, alerts.c.model_version == model_version
            )
        ).first()
        model = conn.execute(
            select(model_versions.c.feature_ranges, model_versions.c.training).where(
                model_versions.c.version == model_version
            )
        ).first()
    if row is None:
        return None
    ranges, training = (model.feature_ranges, model.training) if model else (None, None)
    alert = dict(row._mapping)
    alert["event_time"] = event_time(alert["time_s"])
    alert["features"] = explained_features(
        alert["explanation"], alert["feature_values"], ranges
    )
    spec = keyed_spec(training)
    story = transaction_story(engine, transaction_id)
    current = story.current_label
    return {
        "alert": alert,
        "card": None if spec is None else card_view(engine, alert, spec),
        "labels": story.labels,
        "decisions": story.decisions,
        "current_label": current["label"] if current else None,
        "other_alerts": [
            {"model_version": o["model_version"], "score": o["score"], "status": o["status"]}
            for o in story.alerts
            if o["model_version"] != model_version
        ],
        "audit": audit_trail(engine, transaction_id, model_version),
    }
