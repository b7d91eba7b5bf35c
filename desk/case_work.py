"""The desk's write side for cases (a card's alerts as one work item, :mod:`store.cases`):
claim, release, assign and disposition follow the one rule of :func:`desk.work.transition`. A
disposition closes the case and settles its open alerts in the same database transaction: the
transactions the analyst marks (default: every open alert of the case) get the verdict through
the alert path (:func:`desk.work.change_alert`: the alert's audit entry and, for confirmed fraud
or false positive, its ``analyst`` label); the unmarked ones are closed ``inconclusive`` (no
label). Closing needs the case's revision the analyst saw: an alert attached since makes it a
409, so a late alert is never closed unseen.

Locks: the case row first (``SELECT … FOR UPDATE``), then its alerts — the order the scorer
cannot deadlock with: it locks a case only for alerts it has just inserted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from desk import params
from desk.auth import User
from desk.work import (
    MAX_BULK,
    MAX_NOTE,
    Action,
    AlertKey,
    WorkError,
    change_alert,
    check_assignee,
    check_request,
    transition,
)
from store.tables import alerts, cases, desk_audit

_STATE = ("status", "assignee", "disposition", "disposition_note", "revision")


@dataclass(frozen=True)
class CaseRef:
    """A case to act on, and the revision the analyst saw (required to close it)."""

    case_id: int
    revision: int | None = None


def act_on_cases(engine: Engine, refs: Sequence[CaseRef], action: Action, actor: User, *,
                 marked: Sequence[str] | None = None, assignee: str | None = None,
                 disposition: str | None = None, note: str | None = None) -> list[dict[str, Any]]:
    """Apply ``action`` to every case in ``refs`` in one database transaction, all or nothing.
    ``marked``: the transactions a disposition of one case labels (default: all its open
    alerts)."""
    options = {"assignee": assignee, "disposition": disposition, "note": note}
    check_request([], options)
    if not refs:
        raise WorkError(400, "no cases selected")
    if len(refs) > MAX_BULK:
        raise WorkError(400, f"at most {MAX_BULK} cases at once, not {len(refs)}")
    if len({r.case_id for r in refs}) != len(refs):
        raise WorkError(400, "the same case is selected twice")
    for ref in refs:
        _check_ref(ref, action)
    if marked is not None:
        if action != "disposition" or len(refs) != 1:
            raise WorkError(400, "transaction_ids: only a disposition of one case marks them")
        try:
            for tx in marked:
                params.identifier("transaction_ids", tx)
        except params.BadParam as exc:
            raise WorkError(400, str(exc)) from None
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if action == "assign":
            check_assignee(conn, assignee)
        # Lock every selected case first, in id order, as the scorer's batch does (store.cases):
        # a bulk request and a batch touching the same cards never wait on each other in a ring.
        conn.execute(select(cases.c.id).where(cases.c.id.in_(sorted(r.case_id for r in refs)))
                     .order_by(cases.c.id).with_for_update()).all()
        return [_apply(conn, ref, action, actor, options, marked, now) for ref in refs]


def _check_ref(ref: CaseRef, action: Action) -> None:
    try:
        params.whole("case_id", ref.case_id)
        if ref.revision is not None:
            params.whole("revision", ref.revision, 0)
    except params.BadParam as exc:
        raise WorkError(400, str(exc)) from None
    if action == "disposition" and ref.revision is None:
        raise WorkError(400, "revision: closing a case needs the revision you looked at (an "
                             "alert attached since must not be closed unseen)")


def _apply(conn: Connection, ref: CaseRef, action: Action, actor: User,
           options: dict[str, Any], marked: Sequence[str] | None,
           now: datetime) -> dict[str, Any]:
    c = cases.c
    row = conn.execute(select(*(c[n] for n in _STATE)).where(c.id == ref.case_id)
                       .with_for_update()).first()
    if row is None:
        raise WorkError(404, f"no case {ref.case_id}")
    old = dict(row._mapping)
    new = transition(old, action, actor, revision=ref.revision, what="case", **options)
    closed: list[dict[str, Any]] = []
    if action == "disposition":
        closed = _close_alerts(conn, ref.case_id, new, actor, marked, now)
    conn.execute(update(cases).where(c.id == ref.case_id).values(
        **new, updated_at=now, closed_at=now if new["status"] == "closed" else None))
    changed = {k: v for k, v in new.items() if old[k] != v}
    if action == "disposition":
        changed["marked"] = sorted({a["transaction_id"] for a in closed
                                    if a["disposition"] == new["disposition"]})
    conn.execute(insert(desk_audit).values(
        at=now, actor=actor.name, action=f"case_{action}", case_id=ref.case_id,
        old={k: old[k] for k in changed if k in old}, new=changed))
    return {"id": ref.case_id, **new, "alerts": closed}


def _close_alerts(conn: Connection, case_id: int, new: dict[str, Any], actor: User,
                  marked: Sequence[str] | None, now: datetime) -> list[dict[str, Any]]:
    """Close the case's open alerts: the marked transactions with the case's verdict (labels),
    the rest inconclusive."""
    a = alerts.c
    rows = conn.execute(select(a.transaction_id, a.model_version)
                        .where(a.case_id == case_id, a.status != "closed")
                        .order_by(a.time_s, a.transaction_id, a.model_version)).all()
    open_ids = {r.transaction_id for r in rows}
    chosen = open_ids if marked is None else set(marked)
    stray = sorted(chosen - open_ids)
    if stray:
        raise WorkError(400, f"transaction_ids: {stray[0][:40]!r} is not an open alert of "
                             f"case {case_id}")
    verdict = new["disposition"]
    said = f"case {case_id}" + (f": {new['disposition_note']}" if new["disposition_note"] else "")
    rest = f"case {case_id}: not marked when the case was closed as {verdict}"
    return [change_alert(conn, AlertKey(r.transaction_id, r.model_version), "disposition", actor,
                         {"disposition": verdict, "note": said[:MAX_NOTE]}
                         if r.transaction_id in chosen
                         else {"disposition": "inconclusive", "note": rest}, now,
                         case_id=case_id)
            for r in rows]
