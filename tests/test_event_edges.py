"""Events at the edges of the contract, end to end on a real broker and both databases: the
longest ids with inline labels, event times out of range, a label from the year 9999. A toy model
(registered in the database, no training) keeps these tests to seconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from labels.service import consume_labels
from producer.topics import ensure_topics
from schemas.events import MAX_ID_LENGTH
from schemas.ids import derived_id
from schemas.times import dataset_seconds, event_time
from scorer.service import ScoreConfig, Scorer
from store.counts import stream_clock
from store.db import connect
from store.tables import alerts, decisions, labels, model_versions
from store.truth import truth_of
from stream import ConsumerConfig
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


def test_event_times_out_of_range_are_dead_letters_with_the_reason_and_leave_the_clock(
        kafka_bootstrap, new_topic, db_url):
    """Events dated 2045 (beyond the wall clock plus the allowed skew) and at time_s = 3e11
    (beyond the schema's range) among good ones: each is a dead letter with its reason, decided
    while decoding (none isolated by bisecting a batch), and the stream's clock stays that of
    the good events."""
    engine = toy_engine(db_url)
    topic = new_topic(kafka_bootstrap)
    good = [event(i, time_s=3600.0 * i, v1=2.0 * (i % 2)) for i in range(12)]
    in_2045 = dataset_seconds(datetime(2045, 6, 1, tzinfo=UTC))
    bad = [event(100 + i, time_s=t) for i, t in enumerate([in_2045, 3e11] * 6)]
    send(kafka_bootstrap, topic, [json.dumps(e).encode() for e in good + bad])
    summary = score_topic(kafka_bootstrap, topic, engine, batch_size=500)
    assert (summary.scored, summary.dlq, summary.isolated) == (12, 12, 0)
    with engine.connect() as conn:
        decided = set(conn.execute(select(decisions.c.transaction_id)).scalars())
    assert decided == {e["transaction_id"] for e in good}
    clock = stream_clock(engine)
    assert clock.replace(tzinfo=UTC) == event_time(3600.0 * 11)
    letters = read_all(kafka_bootstrap, f"{topic}.dlq", timeout_ms=3000)
    reasons = sorted(dict(m.headers)["fraudstream.error"].decode() for m in letters)
    assert len(reasons) == 12 and all(r.startswith("time_s: ") for r in reasons)
    assert sum("ahead of the wall clock" in r for r in reasons) == 6


def test_a_label_from_the_year_9999_is_refused_so_a_later_label_still_corrects_the_truth(
        kafka_bootstrap, new_topic, db_url):
    engine = connect(db_url)
    topic = new_topic(kafka_bootstrap)

    def label(label_id: str, verdict: str, observed_at: str) -> bytes:
        return json.dumps({"schema_version": 1, "label_id": label_id, "transaction_id": "t-9",
                           "label": verdict, "source": "chargeback",
                           "observed_at": observed_at}).encode()

    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    send(kafka_bootstrap, topic, [label("far", "fraud", "9999-12-31T00:00:00Z"),
                                  label("soon", "fraud", soon),
                                  label("year-1", "fraud", "0001-01-01T00:00:00+01:00"),
                                  label("later", "genuine", "2013-09-03T00:00:00Z")],
         key=b"t-9")
    ensure_topics(kafka_bootstrap, {f"{topic}.dlq": 1})
    config = ConsumerConfig(bootstrap=kafka_bootstrap, topic=topic, group_id="labels",
                            dlq_topic=f"{topic}.dlq", until_idle=2)
    summary = consume_labels(config, engine)
    assert (summary.stats["labels"], summary.dlq, summary.isolated) == (1, 3, 0)
    with engine.connect() as conn:
        assert list(conn.execute(select(labels.c.label_id)).scalars()) == ["later"]
    assert truth_of(engine, ["t-9"]) == {"t-9": 0}
    letters = read_all(kafka_bootstrap, f"{topic}.dlq", timeout_ms=3000)
    assert sorted(dict(m.headers)["fraudstream.error"].decode().split(":")[0]
                  for m in letters) == ["observed_at"] * 3


def test_retraining_reads_the_topic_back_with_the_same_bounds(kafka_bootstrap, new_topic,
                                                              db_url):
    """`retrain` reads every event of the topic back: one at time_s = 3e11 crashed it on every
    round (OverflowError), one dated 2045 set its clock. Both are left out now, counted as dead
    letters, and the window and clock are those of the good events (no training needed)."""
    from trainer.retrain import RetrainOptions, stream_data

    engine = connect(db_url)
    topic = new_topic(kafka_bootstrap)
    good = [event(i, time_s=3600.0 * i) for i in range(5)]
    bad = [event(7, time_s=3e11), event(8, time_s=dataset_seconds(datetime(2045, 1, 1,
                                                                          tzinfo=UTC)))]
    send(kafka_bootstrap, topic, [json.dumps(e).encode() for e in good + bad])
    opts = RetrainOptions(bootstrap=kafka_bootstrap, topic=topic, mature_after_s=3600.0,
                          db=db_url)
    assembled, provenance = stream_data(engine, opts)
    assert (provenance["records_read"], provenance["dead_lettered"]) == (7, 2)
    assert provenance["as_of"] == event_time(4 * 3600.0).isoformat()  # no decision: newest event
    assert provenance["window"]["last_event"] == event_time(4 * 3600.0).isoformat()
    assert assembled.counts.events == 5
