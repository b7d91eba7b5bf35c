"""A scorer whose production model takes transaction.v1 events, on a topic where keyed
(transaction.v2) events arrive too (real broker, real database): every keyed event goes to the
DLQ with the reason, every v1 event is scored, nothing blocks."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer

from producer.replay import replay
from producer.topics import ensure_topics
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
from store.db import connect
from trainer.keyed_synth import SimulationParams, write_keyed_csv
from trainer.pipeline import train
from trainer.synth import write_csv

pytestmark = pytest.mark.kafka


def test_v1_scorer_dead_letters_keyed_events_with_the_reason(kafka_bootstrap, new_topic,
                                                             tmp_path, home):
    db = f"sqlite:///{tmp_path / 'fs.db'}"
    ulb = write_csv(tmp_path / "ulb.csv", 2000, fraud_rate=0.02, seed=4)
    train(str(ulb), family="xgboost", db=db, home=home)
    keyed = tmp_path / "keyed.csv"
    keyed_rows = write_keyed_csv(keyed, SimulationParams(customers=20, terminals=40, days=5,
                                                         radius=20, seed=2))["rows"]
    topic = new_topic(kafka_bootstrap)
    # keyed and v1 events interleaved on the same partitions
    assert replay(str(keyed), bootstrap=kafka_bootstrap, topic=topic, limit=100).sent == 100
    assert replay(str(ulb), bootstrap=kafka_bootstrap, topic=topic).sent == 2000
    assert replay(str(keyed), bootstrap=kafka_bootstrap, topic=topic, skip=100).sent == \
        keyed_rows - 100
    ensure_topics(kafka_bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    engine = connect(db)
    config = ScoreConfig(bootstrap=kafka_bootstrap, topic=topic, group_id="keyed-mix",
                         until_idle=4, alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq")
    summary = Scorer(config, engine, load_model(engine, home=home)).run()
    assert summary.consumed == 2000 + keyed_rows  # through everything: never stuck
    assert summary.scored == 2000
    assert summary.dlq == keyed_rows
    dlq = KafkaConsumer(f"{topic}.dlq", bootstrap_servers=kafka_bootstrap,
                        auto_offset_reset="earliest", consumer_timeout_ms=8_000)
    letters = list(dlq)
    dlq.close()
    assert len(letters) == keyed_rows
    for letter in letters:
        reason = dict(letter.headers)["fraudstream.error"].decode()
        assert "a transaction.v2 event, but the model in use takes transaction.v1" in reason
