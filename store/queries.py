"""Read-side queries for fraud ops: alerts with their current label, one transaction's whole
story, and retention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, delete, select

from schemas.events import dataset_seconds, event_time
from store.tables import alerts, decisions, labels
from store.truth import current_labels

AlertOrder = Literal["newest", "score"]
LabelFilter = Literal["fraud", "genuine", "none"]
#: Columns of an alert row as returned by :func:`list_alerts` (and the CSV export's header).
ALERT_COLUMNS: tuple[str, ...] = (
    "transaction_id", "model_version", "event_time", "score", "threshold", "amount", "label",
    "label_source", "time_s", "created_at", "source_topic", "source_partition", "source_offset",
)


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
class AlertFilter:
    """Filters of :func:`list_alerts`; None = no filter. Times are event times (UTC)."""

    min_score: float | None = None
    max_score: float | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    model_version: int | None = None
    label: LabelFilter | None = None  # "none" = no label yet


def list_alerts(engine: Engine, *, order: AlertOrder = "score", limit: int | None = 20,
                where: AlertFilter = AlertFilter()) -> list[dict[str, Any]]:
    """Alerts matching ``where``, each with its transaction's current label (``label``:
    ``fraud``/``genuine``/None, ``label_source``) and ``event_time``; ``order`` "score" =
    highest score first, "newest" = latest event time first (then latest created); at most
    ``limit`` rows (None = all). Keys: :data:`ALERT_COLUMNS`."""
    truth = current_labels()
    a = alerts.c
    query = (select(alerts, truth.c.is_fraud, truth.c.source.label("label_source"))
             .select_from(alerts.outerjoin(truth, truth.c.transaction_id == a.transaction_id)))
    if where.min_score is not None:
        query = query.where(a.score >= where.min_score)
    if where.max_score is not None:
        query = query.where(a.score <= where.max_score)
    if where.since is not None:
        query = query.where(a.time_s >= dataset_seconds(where.since))
    if where.until is not None:
        query = query.where(a.time_s < dataset_seconds(where.until))
    if where.model_version is not None:
        query = query.where(a.model_version == where.model_version)
    if where.label == "none":
        query = query.where(truth.c.is_fraud.is_(None))
    elif where.label is not None:
        query = query.where(truth.c.is_fraud == (1 if where.label == "fraud" else 0))
    keys = ((a.time_s.desc(), a.created_at.desc(), a.score.desc()) if order == "newest"
            else (a.score.desc(), a.time_s.desc()))
    query = query.order_by(*keys, a.transaction_id, a.model_version.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [_alert_row(row) for row in rows]


def _alert_row(row: dict[str, Any]) -> dict[str, Any]:
    flag = row.pop("is_fraud")
    row["label"] = None if flag is None else ("fraud" if flag else "genuine")
    row["event_time"] = event_time(row["time_s"])
    return {k: row.get(k) for k in ALERT_COLUMNS}


@dataclass(frozen=True)
class TransactionStory:
    """Everything the store knows about one transaction: its alerts and decisions (one per model
    version, oldest version first) and its label history (oldest first; ``current`` is True on
    the one that is its truth, by :mod:`store.truth`'s rule: latest ``observed_at``, then
    arrival)."""

    transaction_id: str
    alerts: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.alerts or self.decisions or self.labels)

    @property
    def current_label(self) -> dict[str, Any] | None:
        return next((lab for lab in self.labels if lab["current"]), None)

    def to_dict(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "alerts": self.alerts,
                "decisions": self.decisions, "labels": self.labels}


def transaction_story(engine: Engine, transaction_id: str) -> TransactionStory:
    """The alerts, decisions and labels of ``transaction_id`` (empty lists when unknown)."""
    with engine.connect() as conn:
        alert_rows = [dict(r._mapping) for r in conn.execute(
            select(alerts).where(alerts.c.transaction_id == transaction_id)
            .order_by(alerts.c.model_version))]
        decision_rows = [dict(r._mapping) for r in conn.execute(
            select(decisions).where(decisions.c.transaction_id == transaction_id)
            .order_by(decisions.c.model_version))]
        label_rows = [dict(r._mapping) for r in conn.execute(
            select(labels).where(labels.c.transaction_id == transaction_id)
            .order_by(labels.c.observed_at, labels.c.seq))]
    for row in alert_rows:
        row["event_time"] = event_time(row["time_s"])
    for i, row in enumerate(label_rows):
        row["label"] = "fraud" if row.pop("is_fraud") else "genuine"
        row["current"] = i == len(label_rows) - 1
    return TransactionStory(transaction_id, alert_rows, decision_rows, label_rows)


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
