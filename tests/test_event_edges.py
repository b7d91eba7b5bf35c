"""Events at the edges of the contract, end to end on a real broker and both databases: the
longest ids with inline labels. A toy model (registered in the database, no training) keeps
these tests to seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from producer.topics import ensure_topics
from schemas.events import MAX_ID_LENGTH
from schemas.ids import derived_id
from scorer.service import ScoreConfig, Scorer
from store.db import connect
from store.tables import alerts, decisions, labels, model_versions
from tests.scoring_helpers import read_all, send
from tests.test_decode_process import event, toy_model

pytestmark = pytest.mark.kafka


def toy_engine(db_url: str):
    """A migrated database with the toy model (version 3) registered."""
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(model_versions.insert().values(
            version=3, created_at=datetime.now(UTC), strategy="toy", threshold=0.5,
            threshold_policy="fixed", metrics={}, artifact_dir="-", manifest_sha256="-",
            data_sha256="-", stage="production"))
    return engine


def score_topic(bootstrap: str, topic: str, engine, **kw):
    ensure_topics(bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id="edges", until_idle=2,
                         alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq", **kw)
    return Scorer(config, engine, toy_model()).run()


def test_longest_ids_with_inline_labels_are_stored_alerted_and_labelled(
        kafka_bootstrap, new_topic, db_url):
    """Ids of 122..128 characters carrying is_fraud: each is decided, alerted and labelled on
    both databases (the inline label id `inline:<id>` was 7 characters too long for PostgreSQL's
    varchar(128), so the whole event was dead-lettered there). Two ids sharing their first 127
    characters keep two labels."""
    engine = toy_engine(db_url)
    topic = new_topic(kafka_bootstrap)
    base = "t" * (MAX_ID_LENGTH - 1)
    tids = ["a" * n for n in range(MAX_ID_LENGTH - 6, MAX_ID_LENGTH + 1)] + [base + "1", base + "2"]
    send(kafka_bootstrap, topic, [json.dumps(event(i, transaction_id=t, v1=2.0, is_fraud=1))
                                  .encode() for i, t in enumerate(tids)])
    summary = score_topic(kafka_bootstrap, topic, engine)
    assert (summary.scored, summary.flagged, summary.dlq) == (len(tids), len(tids), 0)
    with engine.connect() as conn:
        decided = set(conn.execute(select(decisions.c.transaction_id)).scalars())
        alerted = set(conn.execute(select(alerts.c.transaction_id)).scalars())
        labelled = dict(conn.execute(select(labels.c.label_id, labels.c.transaction_id)).all())
    assert decided == alerted == set(tids)
    assert sorted(labelled.values()) == sorted(tids)  # one label each, none lost to a collision
    assert all(len(i) <= MAX_ID_LENGTH for i in labelled)
    assert labelled[derived_id("inline", "a" * (MAX_ID_LENGTH - 6))] == "a" * (MAX_ID_LENGTH - 6)
    published = read_all(kafka_bootstrap, f"{topic}.alerts", timeout_ms=3000)
    assert sorted(m.key.decode() for m in published) == sorted(tids)
