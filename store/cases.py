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

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    FromClause,
    Integer,
    Select,
    String,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from store.settle import close_settled
from store.tables import alerts, cases


def attach_to_cases(conn: Connection, alert_rows: Iterable[Mapping[str, Any]],
                    now: datetime | None = None) -> dict[str, int]:
    """Attach the keyed alerts among ``alert_rows`` (rows with a ``card_id``) that are in the
    store without a case to their card's open case, opening one where the card has none;
    returns ``{card: case id}`` of the cards touched. A case that gets only alerts already
    closed (settled by a chargeback that arrived first) and has no open one is closed at once
    (:func:`store.settle.close_settled`).

    Set-based: a constant number of statements whatever the number of cards. On PostgreSQL
    the cards' open cases are locked first (in id order, as settlement does: a desk's close
    holding one makes the batch wait, then find it closed); then, on both databases, the
    batch's alerts are added to those cases, cases are opened for the other cards, and the
    alerts point at their card's open case. The batch's alert keys travel as parameters
    (PostgreSQL arrays, a JSON text on SQLite), not as one statement per card; the statements
    are built once per dialect (:func:`_attach_statements`), since building them cost more than
    running them."""
    keys = sorted({(row["transaction_id"], int(row["model_version"])) for row in alert_rows
                   if row.get("card_id")})
    if not keys:
        return {}
    now = now or datetime.now(UTC)
    dialect = conn.dialect.name
    params: dict[str, Any] = {"now": now}
    if dialect == "postgresql":
        params |= {"tids": [k[0] for k in keys], "vers": [k[1] for k in keys]}
    else:
        params["pairs"] = json.dumps(keys)
    statements = _attach_statements(dialect)
    if statements.lock is not None:  # wait for a desk holding one of them, then hold them
        conn.execute(statements.lock, params)
    conn.execute(statements.add, params)
    conn.execute(statements.open, params)
    attached = conn.execute(statements.attach, params).all()
    touched = {r.card_id: int(r.case_id) for r in attached}
    unsettled = {r.card_id for r in attached if r.status != "closed"}
    close_settled(conn, [case_id for card, case_id in touched.items() if card not in unsettled],
                  now)
    return touched


@dataclass(frozen=True)
class _Attach:
    """:func:`attach_to_cases`'s statements, parameters ``now`` and the batch's keys."""

    lock: Executable | None  # PostgreSQL only
    add: Executable
    open: Executable
    attach: Executable


@functools.cache
def _attach_statements(dialect: str) -> _Attach:
    a, c = alerts.c, cases.c
    batch = _keys(dialect)
    # (``case_id + 0``: not an index term, so SQLite finds the batch's alerts by their keys
    # rather than going through every alert without a case, such as every ULB alert)
    mine = (tuple_(a.transaction_id, a.model_version).in_(select(batch.c.tid, batch.c.ver)),
            (a.case_id + 0).is_(None), a.card_id.is_not(None))
    fresh = select(a.card_id, a.score, a.amount, a.time_s).where(*mine)
    per_card = _per_card(fresh)
    lock = None
    if dialect == "postgresql":
        lock = (select(c.id).where(c.card_id.in_(select(fresh.subquery().c.card_id)),
                                   c.status != "closed")
                .order_by(c.id).with_for_update(of=cases))
    f = per_card.subquery()
    stamp = bindparam("now", type_=c.opened_at.type)
    add = update(cases).where(c.card_id == f.c.card_id, c.status != "closed").values(
        max_score=case((c.max_score < f.c.top, f.c.top), else_=c.max_score),
        n_alerts=c.n_alerts + f.c.n, amount=c.amount + f.c.total,
        first_time_s=case((c.first_time_s > f.c.first, f.c.first), else_=c.first_time_s),
        last_time_s=case((c.last_time_s < f.c.last, f.c.last), else_=c.last_time_s),
        updated_at=stamp, revision=c.revision + 1)
    opened = (per_card.add_columns(literal("open"), stamp, stamp, literal(0))
              .where(~exists().where(c.card_id == alerts.c.card_id, c.status != "closed"))
              .order_by(a.card_id))
    open_ = insert(cases).from_select(
        ["card_id", "max_score", "n_alerts", "amount", "first_time_s", "last_time_s", "status",
         "opened_at", "updated_at", "revision"], opened)
    open_case = (select(c.id).where(c.card_id == a.card_id, c.status != "closed")
                 .scalar_subquery())
    attach = (update(alerts).where(*mine).values(case_id=open_case)
              .returning(a.card_id, a.case_id, a.status))
    return _Attach(lock=lock, add=add, open=open_, attach=attach)


def _per_card(fresh: Select[Any]) -> Select[Any]:
    """``fresh`` (the batch's alerts without a case) grouped by card: what each adds to its
    card's case."""
    a = alerts.c
    return (fresh.with_only_columns(a.card_id, func.max(a.score).label("top"),
                                    func.count().label("n"), func.sum(a.amount).label("total"),
                                    func.min(a.time_s).label("first"),
                                    func.max(a.time_s).label("last"))
            .group_by(a.card_id))


def _keys(dialect: str) -> FromClause:
    """The batch's alert keys as a table ``(tid, ver)`` bound as parameters: two arrays
    (``tids``, ``vers``) unnested on PostgreSQL, one JSON array of pairs (``pairs``) on
    SQLite."""
    if dialect == "postgresql":
        tids = bindparam("tids", type_=ARRAY(String))
        vers = bindparam("vers", type_=ARRAY(Integer))
        return func.unnest(tids, vers).table_valued("tid", "ver").render_derived().alias("batch")
    pairs = func.json_each(bindparam("pairs", type_=String)).table_valued("value").alias("pairs")
    return select(func.json_extract(pairs.c.value, "$[0]").label("tid"),
                  func.json_extract(pairs.c.value, "$[1]").label("ver")).subquery("batch")
