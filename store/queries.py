"""Read-side queries for fraud ops: recent alerts and per-model confusion counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from store.tables import alerts, confusion_counts


def recent_alerts(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` highest-scoring alerts, newest model first."""
    query = (select(alerts).order_by(alerts.c.model_version.desc(), alerts.c.score.desc(),
                                     alerts.c.transaction_id).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def counts(engine: Engine) -> list[dict[str, Any]]:
    """Per model version: tp, fp, tn, fn, unlabelled, scored, precision, recall."""
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(confusion_counts).order_by(confusion_counts.c.model_version))]
    for row in rows:
        tp, fp, fn = row["tp"], row["fp"], row["fn"]
        row["scored"] = tp + fp + row["tn"] + fn + row["unlabelled"]
        row["precision"] = tp / (tp + fp) if tp + fp else None
        row["recall"] = tp / (tp + fn) if tp + fn else None
    return rows
