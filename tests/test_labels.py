"""The label sink on a real broker and real databases: history kept, the latest label wins,
duplicates and malformed events handled, labels before their decisions, orphans reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import select

from labels.service import consume_labels
from producer.topics import ensure_topics
from schemas.events import event_time
from store.counts import matured_counts
from store.tables import alerts, decisions, desk_audit, labels
from stream import ConsumerConfig
from tests.scoring_helpers import offline_reference, replay_all, setup_model
from tests.test_scorer_e2e import run_in_process
from trainer.synth import write_csv

pytestmark = pytest.mark.kafka


def label_event(tid: str, label: str, hours: float, label_id: str | None = None,
                source: str = "chargeback", **extra) -> dict:
    return {"schema_version": 1, "label_id": label_id or f"{tid}:{label}:{hours}",
            "transaction_id": tid, "label": label, "source": source,
            "observed_at": (datetime(2013, 9, 1, tzinfo=UTC)
                            + timedelta(hours=hours)).isoformat(), **extra}


def good_label() -> dict:
    return label_event("t", "fraud", 1)


#: (kind, bytes): malformed label events, each must reach labels.dlq with a reason.
MALFORMED = [
    ("not json", b"{oops"),
    ("empty", b""),
    ("array", b"[1, 2]"),
    ("missing label", json.dumps({k: v for k, v in good_label().items()
                                  if k != "label"}).encode()),
    ("unknown label", json.dumps({**good_label(), "label": "maybe"}).encode()),
    ("unknown source", json.dumps({**good_label(), "source": "rumour"}).encode()),
    ("naive time", json.dumps({**good_label(), "observed_at": "2013-09-01T10:00:00"}).encode()),
    ("bad time", json.dumps({**good_label(), "observed_at": "yesterday"}).encode()),
    ("future version", json.dumps({**good_label(), "schema_version": 2}).encode()),
    ("boolean version", json.dumps({**good_label(), "schema_version": True}).encode()),
    ("NUL in id", json.dumps({**good_label(), "transaction_id": "a\u0000b"}).encode()),
    ("empty label id", json.dumps({**good_label(), "label_id": ""}).encode()),
    ("number as id", json.dumps({**good_label(), "transaction_id": 17}).encode()),
    ("long reason", json.dumps({**good_label(), "reason": "x" * 5000}).encode()),
    ("non-utf8", b'{"schema_version": 1, "label_id": "\xff\xfe"}'),
    ("oversized", b" " * 20_000),
    ("deep nesting", b"[" * 5000 + b"]" * 5000),
]


def send(bootstrap: str, topic: str, values: list[bytes], keys: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in zip(keys, values, strict=True):
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


def sink(bootstrap: str, topic: str, engine, **kw):
    ensure_topics(bootstrap, {f"{topic}.dlq": 1})
    config = ConsumerConfig(bootstrap=bootstrap, topic=topic, group_id="labels",
                            dlq_topic=f"{topic}.dlq", until_idle=3, **kw)
    return consume_labels(config, engine)


def test_labels_history_latest_wins_duplicates_orphans_and_dead_letters(
        kafka_bootstrap, new_topic, db_url, home, tmp_path):
    csv = str(write_csv(tmp_path / "l.csv", 3000, fraud_rate=0.02, seed=41))
    engine = setup_model(csv, db_url, home)
    tx_topic, label_topic = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)
    ids = replay_all(csv, kafka_bootstrap, tx_topic)  # with inline is_fraud: the reference
    reference = offline_reference(engine, csv, home, ids)
    alert_ids = sorted(reference.alert_ids)
    flagged, missed = alert_ids[0], next(i for i in ids if i not in reference.alert_ids)
    # Labels arrive BEFORE the scorer has decided anything (the sink is ahead).
    events = [
        label_event(flagged, "genuine", 30, source="analyst"),  # says genuine at 30h ...
        label_event(flagged, "fraud", 40, source="chargeback"),  # ... corrected at 40h
        label_event(missed, "fraud", 10),
        label_event(missed, "fraud", 10),  # the same label id again: a duplicate delivery
        label_event("never-scored-1", "fraud", 5),  # orphan
    ]
    values = [json.dumps(e).encode() for e in events] + [v for _, v in MALFORMED]
    keys = [e["transaction_id"] for e in events] + [k for k, _ in MALFORMED]
    send(kafka_bootstrap, label_topic, values, keys)
    first = sink(kafka_bootstrap, label_topic, engine, batch_size=3)
    assert first.consumed == len(values) and first.dlq == len(MALFORMED)
    assert first.stats["labels"] == len(events)  # rows offered; the duplicate was ignored
    with engine.connect() as conn:
        stored = conn.execute(select(labels.c.label_id, labels.c.transaction_id)).all()
        assert conn.execute(select(decisions)).first() is None  # nothing scored yet
    assert len(stored) == 4 and len({s.label_id for s in stored}) == 4  # history, no duplicate
    assert matured_counts(engine).orphans == 3  # no decision yet: all labels are orphans
    # The scorer catches up (inline labels in the events as well, as in a replay).
    run_in_process(kafka_bootstrap, tx_topic, engine, home)
    report = matured_counts(engine)
    assert report.orphans == 1
    (row,) = report.rows
    # Inline truth said `missed` was genuine or fraud; the later chargeback says fraud; the
    # flagged one ends as fraud (40h beats 30h): compare with the reference adjusted for them.
    exp = offline_reference(engine, csv, home, ids)
    truth = {tid: None for tid in ids}
    assert row.decisions == len(truth) == 3000
    tp, fp, tn, fn = exp.tp, exp.fp, exp.tn, exp.fn
    if flagged not in _frauds(csv, ids):
        tp, fp = tp + 1, fp - 1
    if missed not in _frauds(csv, ids):
        fn, tn = fn + 1, tn - 1
    assert (row.tp, row.fp, row.tn, row.fn) == (tp, fp, tn, fn)
    # The chargeback arrived before the alert: the scorer's write settled the alert at once.
    assert _settled(engine, flagged) == [("closed", "chargeback", "system")]
    # Re-running the sink from scratch in a new group changes nothing (idempotent label ids).
    again = consume_labels(ConsumerConfig(bootstrap=kafka_bootstrap, topic=label_topic,
                                          group_id="labels-2", dlq_topic=f"{label_topic}.dlq",
                                          until_idle=3), engine)
    assert again.consumed == len(values)
    assert matured_counts(engine).rows == report.rows
    assert _settled(engine, flagged) == [("closed", "chargeback", "system")]  # audited once
    # Every malformed event is in the DLQ with its reason.
    consumer = KafkaConsumer(f"{label_topic}.dlq", bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    letters = list(consumer)
    consumer.close()
    reasons = {m.key.decode(): dict(m.headers)["fraudstream.error"].decode() for m in letters}
    assert set(reasons) == {k for k, _ in MALFORMED}
    assert all(r.strip() for r in reasons.values())
    assert "label" in reasons["unknown label"] and "timezone" in reasons["naive time"]
    assert reasons["oversized"].startswith("oversized")


def _settled(engine, tid: str) -> list[tuple]:
    """(status, disposition, audit actor) of the alerts of ``tid``, one per audit entry."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(alerts.c.status, alerts.c.disposition, desk_audit.c.actor)
            .join(desk_audit, (desk_audit.c.transaction_id == alerts.c.transaction_id)
                  & (desk_audit.c.model_version == alerts.c.model_version))
            .where(alerts.c.transaction_id == tid))]


def _frauds(csv: str, ids: list[str]) -> set[str]:
    from trainer.data import load_csv

    data = load_csv(csv)
    return {tid for tid, y in zip(ids, data.y, strict=True) if y == 1}


def test_event_time_is_dataset_time():
    assert event_time(3600.5) == datetime(2013, 9, 1, 1, 0, 0, 500000, tzinfo=UTC)
