"""The desk's card queue, read side: cases (one work item per card, :mod:`store.cases`), ordered
by the card's highest score, keyset-paginated like the alert queue (:mod:`desk.queue`); and one
case with its alerts, their current labels and the case's audit trail."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select, tuple_

from desk import params as p
from desk.card_view import card_view, keyed_spec
from desk.queue import MAX_PAGE, STATUSES, Page, Status
from schemas.events import event_time
from schemas.times import as_utc
from store.tables import alerts, cases, desk_audit, model_versions
from store.truth import latest_label

CASE_COLUMNS = ("id", "card_id", "status", "assignee", "disposition", "disposition_note",
                "max_score", "n_alerts", "amount", "first_time_s", "last_time_s", "opened_at",
                "updated_at", "closed_at", "revision")
#: At most this many of a case's alerts are listed (and can be marked) on its page.
MAX_CASE_ALERTS = 500


@dataclass(frozen=True)
class CaseFilter:
    """What the card queue shows: cases of ``status`` (None: all) and ``assignee``, highest
    score first."""

    status: Status | None = "open"
    assignee: str | None = None
    limit: int = 50
    cursor: str | None = None

    def query_string(self, **change: Any) -> dict[str, str]:
        f = replace(self, **change)
        out = {"status": f.status or "all", "limit": str(f.limit)}
        out.update({k: v for k in ("assignee", "cursor") if (v := getattr(f, k)) is not None})
        return out


def parse_case_filter(query: Mapping[str, str]) -> CaseFilter:
    """A :class:`CaseFilter` from a query string; :class:`desk.params.BadParam` if malformed."""
    status = p.choice("status", (query.get("status") or "open").strip(), (*STATUSES, "all"))
    assignee = (query.get("assignee") or "").strip() or None
    limit = p.whole("limit", query.get("limit"), 1, MAX_PAGE)
    cursor = (query.get("cursor") or "").strip() or None
    if cursor is not None:
        decode_cursor(cursor)
    return CaseFilter(status=None if status == "all" else status,  # type: ignore[arg-type]
                      assignee=None if assignee is None else p.user_name("assignee", assignee),
                      limit=50 if limit is None else limit, cursor=cursor)


def encode_cursor(row: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row["max_score"], row["id"]])).decode()


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        if len(cursor) > 256:
            raise ValueError
        score, case_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(score, int | float) or type(case_id) is not int:
            raise ValueError
        p.number("cursor", str(score), -1e300, 1e300)
        p.whole("cursor", case_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise p.BadParam("cursor: not a cursor this queue handed out") from None
    return float(score), case_id


def waited_s(row: Mapping[str, Any], now: datetime) -> float:
    """How long a case has waited: since it opened, until it closed (or now)."""
    end = row.get("closed_at") or now
    return max(0.0, (as_utc(end) - as_utc(row["opened_at"])).total_seconds())


def _shaped(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    out = dict(row)
    out["waited_s"] = waited_s(out, now)
    out["first_event_time"] = event_time(out["first_time_s"])
    out["last_event_time"] = event_time(out["last_time_s"])
    return out


def list_cases(engine: Engine, f: CaseFilter) -> Page:
    """One page of the card queue (highest score first) and the next page's cursor."""
    c = cases.c
    query = select(*(c[name] for name in CASE_COLUMNS))
    if f.status is not None:
        query = query.where(c.status == f.status)
    if f.assignee is not None:
        query = query.where(c.assignee == f.assignee)
    if f.cursor is not None:
        score, case_id = decode_cursor(f.cursor)
        query = query.where(tuple_(c.max_score, c.id) < tuple_(score, case_id))
    query = query.order_by(c.max_score.desc(), c.id.desc()).limit(f.limit + 1)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = [_shaped(r._mapping, now) for r in conn.execute(query)]
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)


def case_detail(engine: Engine, case_id: int) -> dict[str, Any] | None:
    """One case: its row, its alerts (oldest first, each with its transaction's current label;
    at most :data:`MAX_CASE_ALERTS`) and its audit trail; None if there is no such case."""
    a = alerts.c
    with engine.connect() as conn:
        row = conn.execute(select(*(cases.c[n] for n in CASE_COLUMNS))
                           .where(cases.c.id == case_id)).first()
        if row is None:
            return None
        listed = conn.execute(
            select(a.transaction_id, a.model_version, a.score, a.threshold, a.amount, a.time_s,
                   a.status, a.assignee, a.disposition, a.revision,
                   latest_label(a.transaction_id, "is_fraud").label("label_is_fraud"),
                   latest_label(a.transaction_id, "source").label("label_source"))
            .where(a.case_id == case_id)
            .order_by(a.time_s, a.transaction_id, a.model_version)
            .limit(MAX_CASE_ALERTS)).all()
        audit = conn.execute(select(desk_audit).where(desk_audit.c.case_id == case_id)
                             .order_by(desk_audit.c.id)).all()
    items = []
    for r in listed:
        item = dict(r._mapping)
        flag = item.pop("label_is_fraud")
        item["label"] = None if flag is None else ("fraud" if flag else "genuine")
        item["event_time"] = event_time(item["time_s"])
        items.append(item)
    return {"case": _shaped(row._mapping, datetime.now(UTC)), "alerts": items,
            "audit": [dict(r._mapping) for r in audit], "card": _card(engine, items)}


def _card(engine: Engine, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The card panel (:func:`desk.card_view.card_view`) of the case's highest-scoring alert
    (the latest of equals), with ``transaction_id`` and ``model_version`` of that alert; None
    without alerts or for a model without a behaviour spec."""
    if not items:
        return None
    top = max(items, key=lambda r: (r["score"], r["time_s"]))
    with engine.connect() as conn:
        alert = conn.execute(select(alerts).where(
            alerts.c.transaction_id == top["transaction_id"],
            alerts.c.model_version == top["model_version"])).first()
        training = conn.execute(select(model_versions.c.training).where(
            model_versions.c.version == top["model_version"])).scalar()
    spec = keyed_spec(training)
    if alert is None or spec is None:
        return None
    return {**card_view(engine, dict(alert._mapping), spec),
            "transaction_id": top["transaction_id"], "model_version": top["model_version"]}


def waited_text(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``: how long a case has waited."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
