"""A chargeback settles the work item: when a transaction's current label is a ``chargeback``
saying fraud, its alerts that no analyst has closed leave the open queue, closed with the
disposition ``chargeback`` ("confirmed by chargeback"), each change recorded in the desk's audit
trail as done by ``system``. An alert an analyst already closed is never touched.

:func:`settle_by_chargeback` runs inside the database transaction of whichever write completes
the pair — the label sink's batch (the chargeback arrives after the alert) or the scorer's
batch (the alert arrives after its chargeback) — the same transaction that moves that consumer's
offsets, so a re-delivered batch finds nothing left to settle: exactly once, on both sides.
On PostgreSQL both sides first take a transaction-scoped advisory lock per transaction id (in
one global order), so a label and an alert of one transaction committed at the same moment
cannot each miss the other (SQLite serialises writers anyway).

A case (a card's alerts, :mod:`store.cases`) whose last open alert is closed elsewhere — by a
chargeback here, or one by one in the desk's alert queue — is closed by :func:`close_settled`
in the same transaction, disposition ``settled``, by ``system``, with an audit entry: nothing is
left for an analyst to decide on it, and the card's next alert opens a new case. Cases are
locked before their alerts (:func:`lock_cases_of`), the order the desk's case close takes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Integer

from store.sets import Among, rows_among
from store.tables import alerts, cases, desk_audit, labels

#: The disposition of an alert a chargeback settled (analysts' are in ``desk.work``).
CHARGEBACK = "chargeback"
#: The audit trail's actor for changes no person made.
SYSTEM = "system"
#: The disposition of a case closed because every one of its alerts was closed elsewhere.
SETTLED = "settled"
_LOCK_NAMESPACE = 0x5E77  # the first key of settlement's advisory locks


def _lock(conn: Connection, ids: Sequence[str]) -> None:
    """PostgreSQL: wait for any other transaction settling one of ``ids`` (held until commit)."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "big",
                                  signed=True) for t in ids})
    conn.execute(text("SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(:keys) AS k")
                 .bindparams(bindparam("keys", type_=ARRAY(Integer))),
                 {"ns": _LOCK_NAMESPACE, "keys": keys})


def chargeback_ids(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The transaction ids of label rows that are chargebacks saying fraud (deduplicated)."""
    return sorted({r["transaction_id"] for r in rows
                   if r["source"] == CHARGEBACK and r["is_fraud"] == 1})


def _current_chargebacks(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{transaction_id: label}`` of those of ``ids`` whose current label (latest
    ``observed_at``, then arrival: :mod:`store.truth`'s rule) is a chargeback saying fraud."""
    latest: dict[str, Any] = {}
    for r in rows_among(conn, _labels_of, ids):
        best = latest.get(r.transaction_id)
        if best is None or (r.observed_at, r.seq) > (best.observed_at, best.seq):
            latest[r.transaction_id] = r
    return {tid: dict(r._mapping) for tid, r in latest.items()
            if r.source == CHARGEBACK and r.is_fraud == 1}


def _labels_of(among: Among) -> Any:
    lc = labels.c
    return select(lc.transaction_id, lc.label_id, lc.is_fraud, lc.source, lc.observed_at,
                  lc.seq).where(among(lc.transaction_id))


def _unclosed(among: Among) -> Any:
    a = alerts.c
    return select(a.transaction_id, a.model_version, a.status, a.assignee, a.revision).where(
        among(a.transaction_id), a.status != "closed").with_for_update()


def _open_cases(among: Among) -> Any:
    a = alerts.c
    return select(a.case_id).where(among(a.transaction_id), a.status != "closed",
                                   a.case_id.is_not(None))


def settle_by_chargeback(conn: Connection, transaction_ids: Iterable[str],
                         now: datetime | None = None) -> int:
    """Close the unclosed alerts of ``transaction_ids`` whose current label is a chargeback
    saying fraud; one audit entry each (actor ``system``). Returns how many were settled."""
    ids = sorted(set(transaction_ids))
    if not ids:
        return 0
    _lock(conn, ids)
    # Usually none has a chargeback yet (the alert is new): one statement, nothing locked.
    truth = _current_chargebacks(conn, ids)
    if not truth:
        return 0
    touched = lock_cases_of(conn, list(truth))
    a = alerts.c
    unclosed = rows_among(conn, _unclosed, truth)
    if not unclosed:
        return 0
    now = now or datetime.now(UTC)
    settled = 0
    for row in unclosed:
        label = truth.get(row.transaction_id)
        if label is None:
            continue
        note = f"label {label['label_id']}, observed {label['observed_at']:%Y-%m-%d %H:%M}"
        new = {"status": "closed", "disposition": CHARGEBACK, "disposition_note": note,
               "revision": row.revision + 1}
        done = conn.execute(
            update(alerts).where(a.transaction_id == row.transaction_id,
                                 a.model_version == row.model_version, a.status != "closed")
            .values(**new, updated_at=now)).rowcount
        if not done:
            continue
        conn.execute(insert(desk_audit).values(
            at=now, actor=SYSTEM, action="settle", transaction_id=row.transaction_id,
            model_version=row.model_version,
            old={"status": row.status, "assignee": row.assignee, "revision": row.revision},
            new=new))
        settled += 1
    close_settled(conn, touched, now)
    return settled


def lock_cases_of(conn: Connection, transaction_ids: Sequence[str]) -> list[int]:
    """Lock (``SELECT … FOR UPDATE``, in id order) the not-closed cases of the unclosed alerts
    of ``transaction_ids``, before their alerts are locked; returns their ids."""
    c = cases.c
    found = {case_id for case_id, in rows_among(conn, _open_cases, transaction_ids)}
    if not found:
        return []
    return list(conn.execute(select(c.id).where(c.id.in_(sorted(found)), c.status != "closed")
                             .order_by(c.id).with_for_update()).scalars())


def close_settled(conn: Connection, case_ids: Iterable[int],
                  now: datetime | None = None) -> list[int]:
    """Close those of ``case_ids`` that are not closed and have no open alert left: status
    closed, disposition :data:`SETTLED`, a note counting how their alerts were closed, one
    audit entry each (actor ``system``). Returns the ids closed."""
    a, c = alerts.c, cases.c
    now = now or datetime.now(UTC)
    closed = []
    for case_id in sorted(set(case_ids)):
        row = conn.execute(select(c.status, c.assignee, c.revision).where(
            c.id == case_id, c.status != "closed").with_for_update()).first()
        if row is None or conn.execute(select(func.count()).where(
                a.case_id == case_id, a.status != "closed")).scalar():
            continue
        how = conn.execute(select(a.disposition, func.count()).where(a.case_id == case_id)
                           .group_by(a.disposition).order_by(a.disposition)).all()
        note = "every alert closed elsewhere: " + ", ".join(
            f"{n} {(d or 'closed').replace('_', ' ')}" for d, n in how)
        new = {"status": "closed", "disposition": SETTLED, "disposition_note": note,
               "revision": row.revision + 1}
        conn.execute(update(cases).where(c.id == case_id).values(
            **new, updated_at=now, closed_at=now))
        conn.execute(insert(desk_audit).values(
            at=now, actor=SYSTEM, action="case_settle", case_id=case_id,
            old={"status": row.status, "assignee": row.assignee, "revision": row.revision},
            new=new))
        closed.append(case_id)
    return closed
