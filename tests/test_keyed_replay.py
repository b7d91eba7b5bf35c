"""`fraudstream replay` of a keyed CSV against a real broker: transaction.v2 events keyed by the
customer id, delayed labels due after TX_DATETIME, invalid rows counted."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from producer.replay import replay
from schemas.errors import FraudstreamError
from schemas.export import JSON_DIR
from schemas.keyed import TransactionV2
from tests.test_replay import consume
from trainer.keyed_synth import SimulationParams, write_keyed_csv

pytestmark = pytest.mark.kafka


def test_keyed_replay_keys_by_customer_and_sends_v2_events(kafka_bootstrap, new_topic, tmp_path):
    path = tmp_path / "sim.csv"
    summary = write_keyed_csv(path, SimulationParams(customers=40, terminals=80, days=10,
                                                     radius=20, seed=3))
    n = summary["rows"]
    topic, labels_topic = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)
    sent = replay(str(path), bootstrap=kafka_bootstrap, topic=topic,
                  labels="delayed:7d", labels_topic=labels_topic)
    assert (sent.sent, sent.invalid, sent.failed) == (n, 0, 0)
    assert sent.labels_sent == summary["frauds"] > 0
    validator = jsonschema.Draft202012Validator(
        json.loads((JSON_DIR / "transaction.v2.json").read_text()))
    records = consume(kafka_bootstrap, topic, n)
    assert len(records) == n
    rows = {line.split(",")[0]: line.split(",") for line in path.read_text().splitlines()[1:]}
    times_by_card: dict[bytes, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        event = json.loads(record.value)
        validator.validate(event)
        TransactionV2.model_validate_json(record.value)
        row = rows[event["transaction_id"].removeprefix("sim:")]
        assert record.key == event["customer_id"].encode() == row[2].encode()
        assert (event["terminal_id"], event["amount"]) == (row[3], float(row[4]))
        assert "is_fraud" not in event and "TX_FRAUD_SCENARIO" not in event
        times_by_card[record.key].append((record.partition, event["event_time"]))
    for seen in times_by_card.values():  # one card, one partition, in time order
        assert len({p for p, _ in seen}) == 1
        assert [t for _, t in seen] == sorted(t for _, t in seen)
    labels = [json.loads(r.value) for r in consume(kafka_bootstrap, labels_topic,
                                                   summary["frauds"])]
    assert len(labels) == summary["frauds"]
    for label in labels:  # due 7 days of data time after the transaction
        when = datetime.fromisoformat(rows[label["transaction_id"].removeprefix("sim:")][1])
        assert datetime.fromisoformat(label["observed_at"]) == \
            when.replace(tzinfo=UTC) + timedelta(days=7)


def test_keyed_replay_refuses_a_foreign_header_and_counts_bad_rows(kafka_bootstrap, new_topic,
                                                                    tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_text("id,when,amount\n1,2,3\n")
    with pytest.raises(FraudstreamError, match="ULB layout .* or the keyed layout"):
        replay(str(junk), bootstrap=kafka_bootstrap, topic="unused")
    path = tmp_path / "few.csv"
    path.write_text("TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n"
                    "1,2018-04-01 00:00:01,c1,t1,10.00,0\n"
                    "2,yesterday,c1,t1,10.00,0\n"
                    "3,2018-04-01 00:00:03,,t1,10.00,0\n"
                    "4,2018-04-01 00:00:04,c2,t1,-1,0\n"
                    "5,2018-04-01 00:00:05,c2,t2,5.5,1\n")
    topic = new_topic(kafka_bootstrap, partitions=1)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic)
    assert (summary.sent, summary.invalid) == (2, 3)
    assert [e["line"] for e in summary.invalid_examples] == [3, 4, 5]
    assert "TX_DATETIME" in summary.invalid_examples[0]["reason"]
    events = [json.loads(r.value) for r in consume(kafka_bootstrap, topic, 2)]
    assert [(e["transaction_id"], e["is_fraud"]) for e in events] == [("few:1", 0), ("few:5", 1)]
