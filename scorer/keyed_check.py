"""Re-checking keyed decisions offline: the feature vectors stored with decisions (``score
--log-features``) against the offline implementation over the whole keyed CSV, with each fraud
known when its label was observed (the labels in the store), and the stored scores against an
offline scoring of those vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select

from schemas.behaviour import NEVER, model_inputs
from schemas.ids import derived_id
from schemas.times import micros
from scorer.model import load_model
from store.tables import alerts, decisions, labels


@dataclass(frozen=True)
class Recheck:
    transactions: int  # rows of the CSV
    decided: int  # of them, decisions of the model in the store
    with_features: int  # decisions that carry their feature vector
    max_feature_diff: float  # largest |stored - offline| over every stored vector
    scores_equal: bool  # every stored score == the offline scoring of the offline vector
    alerts: int  # stored alerts of the model
    alerts_match: bool  # the alerts are the flagged decisions and carry their vectors
    risk_used: bool  # some terminal risk was > 0 (labels were seen)


def recheck(engine: Engine, csv: Path, version: int, tag: str = "") -> Recheck:
    """Compare model ``version``'s stored decisions for the replayed ``csv`` (ids
    ``derived_id(tag, TRANSACTION_ID)``, ``tag`` defaulting to the replay's source tag)."""
    from producer.replay import source_tag
    from trainer.keyed_data import parse_keyed

    model = load_model(engine, version, keyed=True)
    spec = model.contract.spec
    data = parse_keyed(csv.read_bytes(), str(csv))
    tag = tag or source_tag(str(csv))
    ids = [derived_id(tag, t) for t in data.transaction_id]
    with engine.connect() as conn:
        known: dict[str, int] = {}
        for tid, at in conn.execute(select(labels.c.transaction_id, labels.c.observed_at)
                                    .where(labels.c.is_fraud == 1)):
            known[tid] = min(known.get(tid, NEVER), micros(at))
        rows = {r.transaction_id: r for r in conn.execute(
            select(decisions.c.transaction_id, decisions.c.score, decisions.c.features)
            .where(decisions.c.model_version == version))}
        alert_rows = {r.transaction_id: r.feature_values for r in conn.execute(
            select(alerts.c.transaction_id, alerts.c.feature_values)
            .where(alerts.c.model_version == version))}
    history = data.history(spec.delay_days, np.array([known.get(i, NEVER) for i in ids]))
    expected = model_inputs(spec, history)
    offline_scores = model.score_raw(expected)
    names = spec.input_names()
    decided = [j for j, i in enumerate(ids) if i in rows]
    vectors = [j for j in decided if rows[ids[j]].features is not None]
    diff = max((float(np.abs(np.array([rows[ids[j]].features[n] for n in names])
                                 - expected[j]).max()) for j in vectors), default=0.0)
    flagged = {ids[j] for j in decided if rows[ids[j]].score >= model.threshold}
    return Recheck(
        transactions=len(ids), decided=len(decided), with_features=len(vectors),
        max_feature_diff=diff,
        scores_equal=all(rows[ids[j]].score == offline_scores[j] for j in decided),
        alerts=len(alert_rows), alerts_match=set(alert_rows) == flagged and all(
            alert_rows[i] == rows[i].features for i in flagged if rows[i].features is not None),
        risk_used=bool(len(expected)) and float(
            expected[:, names.index("terminal_risk_30d")].max()) > 0
        if "terminal_risk_30d" in names else False)
