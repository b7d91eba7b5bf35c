"""The truth about transactions: the latest label of each (by ``observed_at``, then arrival).

Every reader of truth — matured counts, the alert list, retraining, the ops desk — goes through
:func:`current_labels`, so "which label wins" has one definition.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Subquery, func, select

from store.tables import labels


def current_labels() -> Subquery:
    """A subquery of one row per labelled transaction: ``transaction_id``, ``is_fraud``
    (0/1), ``source``, ``observed_at`` of its latest label (latest ``observed_at``, ties broken by
    arrival order ``seq``)."""
    c = labels.c
    ranked = select(
        c.transaction_id, c.is_fraud, c.source, c.observed_at,
        func.row_number().over(partition_by=c.transaction_id,
                               order_by=(c.observed_at.desc(), c.seq.desc())).label("rank"),
    ).subquery("ranked_labels")
    return (select(ranked.c.transaction_id, ranked.c.is_fraud, ranked.c.source,
                   ranked.c.observed_at)
            .where(ranked.c.rank == 1).subquery("current_labels"))


def latest_label(transaction_id: Any, column: str) -> Any:
    """``column`` (``is_fraud``, ``source``, ``observed_at``…) of the current label of the
    transaction ``transaction_id`` (a column of the enclosing query: a correlated scalar
    subquery, NULL when unlabelled). Cheap per row: the queue uses it on one page of alerts."""
    c = labels.c
    return (select(c[column]).where(c.transaction_id == transaction_id)
            .order_by(c.observed_at.desc(), c.seq.desc()).limit(1).scalar_subquery())


def truth_of(engine: Engine, transaction_ids: Iterable[str]) -> dict[str, int]:
    """``{transaction_id: is_fraud (0/1)}`` of the current label of each of ``transaction_ids``
    that has one (unlabelled ids are absent). One query over :func:`current_labels`."""
    wanted = set(transaction_ids)
    truth = current_labels()
    with engine.connect() as conn:
        rows = conn.execute(select(truth.c.transaction_id, truth.c.is_fraud))
        return {tid: int(flag) for tid, flag in rows if tid in wanted}


#: Label sources that are evidence independent of the analysts' verdicts.
INDEPENDENT_SOURCES = ("chargeback", "replay")


def label_origins(engine: Engine, transaction_ids: Iterable[str]) -> dict[str, tuple[str, bool]]:
    """``{transaction_id: (source of its current label, contradicted)}`` for each of
    ``transaction_ids`` that has a label; ``contradicted``: the current label is an analyst's and
    a chargeback or replayed truth (:data:`INDEPENDENT_SOURCES`) about the same transaction says
    the opposite — whenever it was observed."""
    wanted = set(transaction_ids)
    truth = current_labels()
    c = labels.c
    with engine.connect() as conn:
        current = {tid: (int(flag), source) for tid, flag, source in conn.execute(
            select(truth.c.transaction_id, truth.c.is_fraud, truth.c.source)) if tid in wanted}
        independent = {(tid, int(flag)) for tid, flag in conn.execute(
            select(c.transaction_id, c.is_fraud).where(c.source.in_(INDEPENDENT_SOURCES)))
            if tid in current and current[tid][1] == "analyst"}
    return {tid: (source, source == "analyst" and (tid, 1 - flag) in independent)
            for tid, (flag, source) in current.items()}
