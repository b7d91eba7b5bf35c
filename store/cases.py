"""Cases: a card's alerts gathered into one work item for the desk's card queue.

The scorer attaches a keyed batch's new alerts to their cards' cases **in the batch's
transaction** (with its decisions, alerts and offsets): the member that owns a card's partition
is the only writer of its alerts, so no two scorers race for a card, and a re-delivered batch
finds its alerts already attached (only alerts without a case are attached: exactly once).

A card has at most one case that is not closed (a partial unique index); its open or claimed
case collects every new alert of the card, which bumps the case's ``revision``. Once closed,
the card's next alert opens a new case. A desk closing a case locks its row (``SELECT … FOR
UPDATE``) and checks the revision the analyst saw, so an alert attached meanwhile makes the
close a 409 (reload, look, decide); an alert whose batch waited for the desk's lock finds the
case closed and opens a new one. Either way a late alert is never closed unseen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, case, insert, select, update

from store.settle import close_settled
from store.tables import alerts, cases

_CHUNK = 500


def attach_to_cases(conn: Connection, alert_rows: Iterable[Mapping[str, Any]],
                    now: datetime | None = None) -> dict[str, int]:
    """Attach the keyed alerts among ``alert_rows`` (rows with a ``card_id``) that are in the
    store without a case to their card's open case, opening one where the card has none;
    returns ``{card: case id}`` of the cards touched. A case that gets only alerts already
    closed (settled by a chargeback that arrived first) and has no open one is closed at once
    (:func:`store.settle.close_settled`)."""
    keys: dict[str, set[int]] = defaultdict(set)
    for row in alert_rows:
        if row.get("card_id"):
            keys[row["transaction_id"]].add(int(row["model_version"]))
    if not keys:
        return {}
    a = alerts.c
    ids = sorted(keys)
    fresh: dict[str, list[Any]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        for r in conn.execute(select(a.transaction_id, a.model_version, a.card_id, a.score,
                                     a.amount, a.time_s, a.status)
                              .where(a.transaction_id.in_(ids[start:start + _CHUNK]),
                                     a.case_id.is_(None), a.card_id.is_not(None))):
            if r.model_version in keys[r.transaction_id]:
                fresh[r.card_id].append(r)
    now = now or datetime.now(UTC)
    touched = {card: _attach(conn, card, rows, now) for card, rows in sorted(fresh.items())}
    close_settled(conn, [touched[card] for card, rows in fresh.items()
                         if all(r.status == "closed" for r in rows)], now)
    return touched


def _attach(conn: Connection, card: str, rows: list[Any], now: datetime) -> int:
    c = cases.c
    top = max(r.score for r in rows)
    total = float(sum(r.amount for r in rows))
    first, last = min(r.time_s for r in rows), max(r.time_s for r in rows)
    case_id = conn.execute(select(c.id).where(c.card_id == card, c.status != "closed")
                           .with_for_update()).scalar()
    if case_id is None:
        case_id = conn.execute(insert(cases).values(
            card_id=card, status="open", max_score=top, n_alerts=len(rows), amount=total,
            first_time_s=first, last_time_s=last, opened_at=now, updated_at=now, revision=0,
        )).inserted_primary_key[0]
    else:
        conn.execute(update(cases).where(c.id == case_id).values(
            max_score=case((c.max_score < top, top), else_=c.max_score),
            n_alerts=c.n_alerts + len(rows), amount=c.amount + total,
            first_time_s=case((c.first_time_s > first, first), else_=c.first_time_s),
            last_time_s=case((c.last_time_s < last, last), else_=c.last_time_s),
            updated_at=now, revision=c.revision + 1))
    a = alerts.c
    by_version: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        by_version[r.model_version].append(r.transaction_id)
    for version, txs in by_version.items():
        for start in range(0, len(txs), _CHUNK):
            conn.execute(update(alerts).where(
                a.model_version == version, a.transaction_id.in_(txs[start:start + _CHUNK]),
                a.case_id.is_(None)).values(case_id=case_id))
    return int(case_id)
