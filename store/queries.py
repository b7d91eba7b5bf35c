"""Read-side queries for fraud ops: alerts with their current label, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from store.tables import alerts, decisions, labels
from store.truth import current_labels


def recent_alerts(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` highest-scoring alerts, newest model first, each with its transaction's
    current label (``label``: ``fraud``/``genuine``/None) and that label's ``label_source``."""
    truth = current_labels()
    query = (select(alerts, truth.c.is_fraud, truth.c.source.label("label_source"))
             .select_from(alerts.outerjoin(truth,
                                           truth.c.transaction_id == alerts.c.transaction_id))
             .order_by(alerts.c.model_version.desc(), alerts.c.score.desc(),
                       alerts.c.transaction_id).limit(limit))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        flag = row.pop("is_fraud")
        row["label"] = None if flag is None else ("fraud" if flag else "genuine")
    return rows


@dataclass(frozen=True)
class Pruned:
    decisions: int
    labels: int


def prune(engine: Engine, before: datetime) -> Pruned:
    """Delete decisions whose event time, and labels whose observed time, is before ``before``
    (one transaction). Alerts are kept: they are ops records, not the decision log."""
    with engine.begin() as conn:
        gone_decisions = conn.execute(
            delete(decisions).where(decisions.c.event_time < before)).rowcount
        gone_labels = conn.execute(delete(labels).where(labels.c.observed_at < before)).rowcount
    return Pruned(decisions=int(gone_decisions), labels=int(gone_labels))
