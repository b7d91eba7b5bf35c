"""The desk's write side: claim, release, assign, disposition (one or in bulk), each one
database transaction with its audit entry — and, for a confirmed-fraud or false-positive
disposition, the transaction's ``analyst`` label (written by the label sink's own writer).

The rules are a pure function, :func:`transition` (state, action → new state, or a
:class:`WorkError` with its HTTP status); the I/O edge locks the row (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), applies the rule and writes.
Two analysts acting on one alert at once: the second sees the first's result and gets a 409.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert, select, update

from desk import params
from desk.auth import User
from labels.decode import label_row
from labels.service import write_labels
from schemas.events import MAX_REASON_LENGTH, LabelV1
from schemas.ids import derived_id
from store.settle import CHARGEBACK, close_settled, lock_cases_of
from store.tables import alerts, desk_audit, desk_users

Disposition = Literal["confirmed_fraud", "false_positive", "inconclusive"]
DISPOSITIONS: tuple[Disposition, ...] = ("confirmed_fraud", "false_positive", "inconclusive")
#: Disposition → label value; inconclusive is not a label.
LABEL_OF: dict[str, str] = {"confirmed_fraud": "fraud", "false_positive": "genuine"}
MAX_NOTE = MAX_REASON_LENGTH  # a note becomes the label's reason
MAX_BULK = 500
Action = Literal["claim", "release", "assign", "disposition"]
_STATE = ("status", "assignee", "disposition", "disposition_note", "revision")
_NO_RECORD = SimpleNamespace(topic=None, partition=None, offset=None)  # not from Kafka


class WorkError(Exception):
    """A refused change: ``status`` is the HTTP status (400, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AlertKey:
    transaction_id: str
    model_version: int


def transition(
    state: dict[str, Any],
    action: Action,
    actor: User,
    *,
    assignee: str | None = None,
    disposition: str | None = None,
    note: str | None = None,
    revision: int | None = None,
    what: str = "alert",
) -> dict[str, Any]:
    """The new work state of an alert (or a case: ``what``) in ``state`` after ``actor`` does
    ``action`` (pure)."""
    if not actor.can("analyst"):
        raise WorkError(403, f"{actor.role} {actor.name} may not change {what}s")
    if revision is not None and revision != state["revision"]:
        raise WorkError(
            409,
            f"the {what} changed since you loaded it (revision "
            f"{state['revision']}, you had {revision}): reload and retry",
        )
    if state["status"] == "closed" and state["disposition"] == CHARGEBACK:
        raise WorkError(409, "already settled: confirmed by chargeback (closed by the system)")
    if state["status"] == "closed":
        raise WorkError(
            409, f"already closed as {state['disposition']} by {state['assignee'] or 'someone'}"
        )
    held_by_other = state["status"] == "claimed" and state["assignee"] != actor.name
    new = dict(state, revision=state["revision"] + 1)
    if action == "claim":
        if held_by_other:
            raise WorkError(409, f"already claimed by {state['assignee']}")
        new.update(status="claimed", assignee=actor.name)
    elif action == "release":
        if state["status"] != "claimed":
            raise WorkError(409, "not claimed")
        if held_by_other and not actor.can("admin"):
            raise WorkError(
                409, f"claimed by {state['assignee']}: only they or an admin may release it"
            )
        new.update(status="open", assignee=None)
    elif action == "assign":
        if not assignee:
            raise WorkError(400, "assign needs an assignee")
        if held_by_other and not actor.can("admin"):
            raise WorkError(
                409, f"claimed by {state['assignee']}: only they or an admin may reassign it"
            )
        new.update(status="claimed", assignee=assignee)
    elif action == "disposition":
        if disposition not in DISPOSITIONS:
            raise WorkError(400, f"disposition must be one of {', '.join(DISPOSITIONS)}")
        if note is not None and len(note) > MAX_NOTE:
            raise WorkError(400, f"note too long: {len(note)} characters > {MAX_NOTE}")
        if held_by_other and not actor.can("admin"):
            raise WorkError(
                409, f"claimed by {state['assignee']}: only they or an admin may close it"
            )
        new.update(
            status="closed",
            disposition=disposition,
            disposition_note=note or None,
            assignee=state["assignee"] or actor.name,
        )
    else:
        raise WorkError(400, f"unknown action {action!r}")
    return new


def _label(key: AlertKey, new: dict[str, Any], actor: User, now: datetime) -> dict[str, Any]:
    label = LabelV1.model_validate(
        {
            "schema_version": 1,
            "label_id": derived_id("desk", key.transaction_id, key.model_version, new["revision"]),
            "transaction_id": key.transaction_id,
            "label": LABEL_OF[new["disposition"]],
            "source": "analyst",
            "observed_at": now,
            "reason": f"{actor.name}: {new['disposition_note'] or new['disposition']}"[
                :MAX_REASON_LENGTH
            ],
        }
    )
    return label_row(label, _NO_RECORD, now)


def change_alert(
    conn: Connection,
    key: AlertKey,
    action: Action,
    actor: User,
    options: dict[str, Any],
    now: datetime,
    case_id: int | None = None,
) -> dict[str, Any]:
    """Apply ``action`` to one alert inside ``conn``'s transaction: lock its row, apply
    :func:`transition`, write it, its audit entry (about case ``case_id`` too, when the change
    is part of a case's) and, for a verdict, the transaction's ``analyst`` label."""
    where = (
        alerts.c.transaction_id == key.transaction_id,
        alerts.c.model_version == key.model_version,
    )
    row = conn.execute(
        select(*(alerts.c[c] for c in _STATE)).where(*where).with_for_update()
    ).first()
    if row is None:
        raise WorkError(404, f"no alert {key.transaction_id!r} of model {key.model_version}")
    old = dict(row._mapping)
    new = transition(old, action, actor, **options)
    conn.execute(update(alerts).where(*where).values(**new, updated_at=now))
    changed = {k: v for k, v in new.items() if old[k] != v}
    conn.execute(
        insert(desk_audit).values(
            at=now,
            actor=actor.name,
            action=action,
            transaction_id=key.transaction_id,
            model_version=key.model_version,
            case_id=case_id,
            old={k: old[k] for k in changed},
            new=changed,
        )
    )
    if action == "disposition" and new["disposition"] in LABEL_OF:
        write_labels(conn, [_label(key, new, actor, now)])
    return {"transaction_id": key.transaction_id, "model_version": key.model_version, **new}


def check_assignee(conn: Connection, assignee: str | None) -> None:
    if assignee is None:
        return
    role = conn.execute(
        select(desk_users.c.role).where(
            desk_users.c.name == assignee, desk_users.c.disabled.is_(False)
        )
    ).scalar()
    if role not in ("analyst", "admin"):
        raise WorkError(
            400, f"assignee: cannot assign to {assignee!r}: not an active analyst or admin"
        )


def check_request(keys: Sequence[AlertKey], options: dict[str, Any]) -> None:
    """Every value of a change within what the store holds (page, API and bulk alike)."""
    try:
        for key in keys:
            params.identifier("transaction_id", key.transaction_id)
            params.whole("model_version", key.model_version)
        if options.get("assignee") is not None:
            params.user_name("assignee", options["assignee"])
        if options.get("note") is not None:
            params.text("note", options["note"], MAX_NOTE)
        if options.get("revision") is not None:
            params.whole("revision", options["revision"], 0)
    except params.BadParam as exc:
        raise WorkError(400, str(exc)) from None


def act(
    engine: Engine, keys: Sequence[AlertKey], action: Action, actor: User, **options: Any
) -> list[dict[str, Any]]:
    """Apply ``action`` to every alert in ``keys`` in one database transaction: all or nothing
    (the first refusal raises its :class:`WorkError` and nothing is written)."""
    check_request(keys, options)
    if not keys:
        raise WorkError(400, "no alerts selected")
    if len(keys) > MAX_BULK:
        raise WorkError(400, f"at most {MAX_BULK} alerts at once, not {len(keys)}")
    if len(set(keys)) != len(keys):
        raise WorkError(400, "the same alert is selected twice")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if action == "assign":
            check_assignee(conn, options.get("assignee"))
        # a case whose last open alert this closes is closed too (store.settle); cases are
        # locked before alerts, as the case close does
        cases = (lock_cases_of(conn, [k.transaction_id for k in keys])
                 if action == "disposition" else [])
        done = [change_alert(conn, key, action, actor, options, now) for key in keys]
        close_settled(conn, cases, now)
        return done


def record(engine: Engine, actor: str, action: str, new: dict[str, Any]) -> None:
    """An audit entry that concerns no alert (users, tokens)."""
    with engine.begin() as conn:
        conn.execute(
            insert(desk_audit).values(at=datetime.now(UTC), actor=actor, action=action, new=new)
        )
