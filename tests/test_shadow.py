"""Shadow scoring (``score --shadow``): the shadow's decisions equal an offline scoring of the same
events by the shadow model, it raises no alert, and production's results are untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from kafka import KafkaConsumer
from sqlalchemy import select

from producer.replay import source_tag, transaction_id
from schemas.errors import FraudstreamError
from scorer.model import load_model
from scorer.shadow import shadow_version
from store.tables import alerts, decisions
from tests.scoring_helpers import finish, replay_all, scorer_process, setup_model
from trainer.data import load_csv
from trainer.pipeline import train
from trainer.synth import write_csv


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    return str(write_csv(tmp_path_factory.mktemp("d") / "small.csv", 6000, fraud_rate=0.02,
                         seed=17))


def two_models(csv, db_url, home):
    engine = setup_model(csv, db_url, home)  # v1: production
    assert train(csv, epochs=2, seed=4, db=db_url, home=home)["version"] == 2  # candidate
    return engine


def test_shadow_version_resolution(small_csv, db_url, home):
    engine = two_models(small_csv, db_url, home)
    assert shadow_version(engine, "candidate", 1) == 2
    assert shadow_version(engine, "2", 1) == 2
    with pytest.raises(FraudstreamError, match="is the model scoring already"):
        shadow_version(engine, "1", 1)
    with pytest.raises(FraudstreamError, match="not registered"):
        shadow_version(engine, "9", 1)
    with pytest.raises(FraudstreamError, match="'candidate' or a version number"):
        shadow_version(engine, "newest", 1)


@pytest.mark.kafka
# PostgreSQL only (the shadow's rows go through the binary COPY there; the decision rows' SQLite
# path is checked by the parity tests): .ci/run's time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_shadow_decisions_equal_offline_scoring_and_never_alert(
        kafka_bootstrap, new_topic, small_csv, db_url, home):
    engine = two_models(small_csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    ids = replay_all(small_csv, kafka_bootstrap, topic)
    summary = finish(scorer_process(kafka_bootstrap, topic, "with-shadow", db_url, home,
                                    "--shadow", "candidate", "--batch-size", "700",
                                    "--until-idle", "5"))
    assert summary["model_version"] == 1 and summary["shadow_version"] == 2
    assert summary["consumed"] == summary["scored"] == summary["shadow_scored"] == len(ids)

    raw = load_csv(small_csv).raw
    with engine.connect() as conn:
        rows = conn.execute(select(decisions).order_by(decisions.c.transaction_id)).all()
        alert_rows = conn.execute(select(alerts.c.transaction_id, alerts.c.model_version)).all()
    line = {transaction_id(source_tag(small_csv), i + 2): i for i in range(len(ids))}
    for version in (1, 2):
        model = load_model(engine, version)
        mine = [r for r in rows if r.model_version == version]
        assert sorted(r.transaction_id for r in mine) == sorted(ids)  # each event once each
        scores = model.score_raw(raw[[line[r.transaction_id] for r in mine]])
        np.testing.assert_array_equal([r.flagged for r in mine], scores >= model.threshold)
        np.testing.assert_allclose([r.score for r in mine], scores, rtol=1e-6, atol=1e-9)
        assert {r.threshold for r in mine} == {model.threshold}
    shadow_flagged = {r.transaction_id for r in rows if r.model_version == 2 and r.flagged}
    assert len(shadow_flagged) == summary["shadow_flagged"] > 0  # it would have flagged some …
    assert {a.model_version for a in alert_rows} == {1}  # … yet raised no alert
    assert {a.transaction_id for a in alert_rows} == {
        r.transaction_id for r in rows if r.model_version == 1 and r.flagged}
    consumer = KafkaConsumer(f"{topic}.alerts", bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    published = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert published and {a["model_version"] for a in published} == {1}
    assert len(published) == len(alert_rows)
