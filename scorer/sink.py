"""The scorer's database effects for one micro-batch, inside the transaction that also moves the
consumer offsets (:mod:`stream.consumer`): decisions, alerts and inline labels, each idempotent
on its natural key, so a redelivered event changes nothing; an alert whose chargeback already
arrived is settled in the same transaction (:mod:`store.settle`). In the production group the
same transaction fences the model: it commits only while the batch's model is production."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from scorer.process import ScoredBatch
from store.bulk import insert_ignore
from store.columns import Columns
from store.registry import production_version
from store.settle import settle_by_chargeback
from store.tables import alerts, decisions, labels
from stream import BatchSuperseded


def write_batch(conn: Connection, scored: ScoredBatch, *, log_decisions: bool = True,
                shadow_rows: Columns | Sequence[dict[str, Any]] = (),
                fence: int | None = None) -> None:
    """Insert the batch's decisions, alerts and inline labels (duplicates ignored), and the
    shadow model's decisions (``shadow_rows``: decisions only — a shadow never alerts).

    ``fence``: the version that scored the batch, which must be production when the transaction
    commits (its row is share-locked until then, so a promotion waits for it); otherwise
    :class:`stream.BatchSuperseded` and nothing of the batch is committed.
    ``log_decisions=False`` exists only for the decision-log benchmark (its reference run).
    """
    if fence is not None:
        production = production_version(conn, lock=True)
        if production != fence:
            raise BatchSuperseded(f"it was scored with model {fence} but model {production} is "
                                  "production now")
    if log_decisions:
        # one statement (one COPY on PostgreSQL) for production's and the shadow's decisions
        insert_ignore(conn, decisions, Columns.concat([scored.decision_rows, shadow_rows]))
    insert_ignore(conn, alerts, scored.alert_rows)
    insert_ignore(conn, labels, scored.label_rows)
    # an alert whose chargeback is already in the store is settled at once (store.settle)
    settle_by_chargeback(conn, [row["transaction_id"] for row in scored.alert_rows])
