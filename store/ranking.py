"""``fraudstream counts --ranking``: how well each model ranked what it scored — ROC AUC, average
precision and, for keyed transactions (their card on record in ``keyed_transactions``), card
precision top-k (the handbook's CP@k: each event-time day, the k cards with the highest score).

Each version is judged on the transactions it decided whose truth is known by the rules of
counts (:mod:`store.counts`): the current label (:mod:`store.truth`), else genuine once mature
against the stream's clock, else pending (left out). Reads every matured decision: a report for
a demo or a review, not a hot path.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, case, select

from schemas.times import as_utc
from store.counts import maturity_cutoff, stream_clock
from store.tables import decisions, keyed_transactions
from store.truth import current_labels


def _day(when: datetime) -> int:
    return as_utc(when).date().toordinal()


def ranking(engine: Engine, mature_after: timedelta, *, top_k: int = 100,
            as_of: datetime | None = None) -> list[dict[str, Any]]:
    """One JSON-ready row per model version: matured decisions, frauds among them, ROC AUC,
    average precision and CP@``top_k`` (None when undefined: one class only, or some of the
    version's transactions have no card on record)."""
    from models.evaluation import card_precision_top_k, evaluate

    as_of = as_of or stream_clock(engine)
    if as_of is None:
        return []
    cutoff = maturity_cutoff(as_of, mature_after)
    d, k, truth = decisions.c, keyed_transactions.c, current_labels()
    state = case((truth.c.is_fraud.is_not(None), truth.c.is_fraud),
                 (d.event_time <= cutoff, 0), else_=None)
    query = (select(d.model_version, d.score, d.event_time, state, k.customer_id)
             .select_from(decisions.outerjoin(truth, truth.c.transaction_id == d.transaction_id)
                          .outerjoin(keyed_transactions, k.transaction_id == d.transaction_id))
             .order_by(d.model_version, d.event_time, d.transaction_id))
    rows: dict[int, list[tuple[float, int, int, str | None]]] = {}
    with engine.connect() as conn:
        for version, score, when, label, card in conn.execute(query):
            if label is not None:
                rows.setdefault(int(version), []).append(
                    (float(score), int(label), _day(when), card))
    out = []
    for version, found in sorted(rows.items()):
        p = np.array([r[0] for r in found], dtype=np.float64)
        y = np.array([r[1] for r in found], dtype=np.int8)
        both = 0 < int(y.sum()) < len(y)
        figures = evaluate(y, p, 0.5) if both else {}
        cards = [r[3] for r in found]
        keyed = both and all(c is not None for c in cards)
        out.append({
            "model_version": version, "matured": len(found), "frauds": int(y.sum()),
            "roc_auc": figures.get("auc"), "average_precision": figures.get("prc"),
            "top_k": top_k,
            "card_precision_top_k": card_precision_top_k(
                np.array([r[2] for r in found]), np.array(cards, dtype=object), y, p, top_k)
            if keyed else None})
    return out


def describe(row: dict[str, Any]) -> str:
    """One line for people."""
    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    return (f"v{row['model_version']}: {row['matured']:,} matured decisions, {row['frauds']:,} "
            f"frauds: ROC AUC {fmt(row['roc_auc'])}, average precision "
            f"{fmt(row['average_precision'])}, card precision top-{row['top_k']} "
            f"{fmt(row['card_precision_top_k'])}")
