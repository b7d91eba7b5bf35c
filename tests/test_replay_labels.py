"""`fraudstream replay --labels inline|delayed:DURATION|none`: the duration parser, the label
schedule, and delayed label events on a real broker."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import jsonschema
import pytest
from kafka import KafkaAdminClient

from producer.labels import LabelMode, LabelSchedule, label_event
from producer.replay import parse_duration, replay
from schemas.errors import FraudstreamError
from schemas.events import LabelV1, event_time
from schemas.export import JSON_DIR
from tests.test_replay import consume, csv_rows, run_cli
from trainer.synth import write_csv

HOUR = 3600.0


@pytest.fixture(scope="module")
def label_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / "label.v1.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(("text", "seconds"), [
    ("48h", 172_800.0), ("90m", 5400.0), ("3600s", 3600.0), ("2d", 172_800.0),
    ("1.5h", 5400.0), ("0s", 0.0), (" 10M ", 600.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["x", "", "48", "h", "-1h", "1w", "1 h", "1h30m", "1e3s", ".5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(FraudstreamError, match=r"--labels: bad duration .* \(use e\.g\. 48h"):
        parse_duration(text)


def test_label_modes() -> None:
    assert LabelMode.parse("inline") == LabelMode.parse(True) == LabelMode("inline")
    assert LabelMode.parse("none") == LabelMode.parse(False) == LabelMode("none")
    assert LabelMode.parse("delayed:48h") == LabelMode("delayed", 172_800.0, "48h")
    for bad in ("sometimes", "delayed", "delayed:", "Inline"):
        with pytest.raises(FraudstreamError, match="--labels"):
            LabelMode.parse(bad)


def test_schedule_releases_labels_in_due_order() -> None:
    schedule = LabelSchedule(10.0, "10s")
    assert schedule.pop_due(1e9) == [] and schedule.next_due == float("inf")
    schedule.add("b", 5.0, row=2)
    schedule.add("a", 0.0, row=1)
    schedule.add("c", 5.0, row=3)
    assert len(schedule) == 3 and schedule.next_due == 10.0
    assert schedule.pop_due(9.99) == []
    first = schedule.pop_due(10.0)
    assert [(p.key, p.row, p.due_s) for p in first] == [(b"a", 1, 10.0)]
    assert schedule.next_due == 15.0
    assert [p.key for p in schedule.drain()] == [b"b", b"c"]  # ties: in scheduling order
    assert len(schedule) == 0


def test_label_event_matches_the_contract(label_validator) -> None:
    raw = label_event("cards-000000042", 100.0, HOUR, "1h")
    label = LabelV1.model_validate_json(raw)
    label_validator.validate(json.loads(raw))
    assert (label.label_id, label.transaction_id) == ("replay:cards-000000042", "cards-000000042")
    assert (label.label, label.source) == ("fraud", "chargeback")  # a simulated chargeback
    assert label.observed_at == event_time(100.0) + timedelta(hours=1)
    assert label.reason == "replayed Class=1 after 1h"


@pytest.mark.kafka
def test_delayed_labels_interleave_with_the_dataset_clock(kafka_bootstrap, new_topic, tmp_path,
                                                          label_validator) -> None:
    """Transactions and labels on one single-partition topic: offsets give the send order."""
    path = write_csv(tmp_path / "late.csv", 2000, fraud_rate=0.02, seed=8)
    rows = csv_rows(path)
    frauds = {f"late-{line:09d}" for line, row in rows.items() if row[30] == "1"}
    topic = new_topic(kafka_bootstrap, partitions=1)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic, labels="delayed:1h",
                     labels_topic=topic)
    assert (summary.sent, summary.failed, summary.invalid, summary.rows) == (2000, 0, 0, 2000)
    assert (summary.labels_sent, summary.labels_failed) == (len(frauds), 0) and len(frauds) == 40
    assert summary.labels_topic == topic and summary.resume_skip is None
    assert f"sent {len(frauds)} label events to '{topic}'" in summary.human()

    records = consume(kafka_bootstrap, topic, 2000 + len(frauds))
    assert [r.offset for r in records] == list(range(2000 + len(frauds)))
    events = [json.loads(r.value) for r in records]
    times = {e["transaction_id"]: e["time_s"] for e in events if "label_id" not in e}
    assert len(times) == 2000 and all("is_fraud" not in e for e in events if "time_s" in e)
    labels = [(i, e) for i, e in enumerate(events) if "label_id" in e]
    assert sorted(e["transaction_id"] for _, e in labels) == sorted(frauds)  # one per fraud
    tx_times = [(i, e["time_s"]) for i, e in enumerate(events) if "label_id" not in e]
    late = 0
    for position, label in labels:
        label_validator.validate(label)
        parsed = LabelV1.model_validate_json(records[position].value)
        assert records[position].key == label["transaction_id"].encode()
        time_s = times[label["transaction_id"]]
        due = time_s + HOUR
        assert parsed.observed_at == event_time(due) == datetime.fromisoformat(
            label["observed_at"])
        before = [t for i, t in tx_times if i < position]
        after = [t for i, t in tx_times if i > position]
        assert events.index(next(e for e in events if e.get("transaction_id") ==
                                 label["transaction_id"])) < position  # its transaction first
        assert max(before) < due  # sent once every earlier-due transaction has gone ...
        assert not after or min(after) >= due  # ... and before any transaction at/after due
        late += not after
    last = max(times.values())  # labels due after the last transaction: sent at the end
    assert late == sum(times[t] + HOUR > last for t in frauds) < len(frauds)


@pytest.mark.kafka
def test_delayed_labels_topic_created_and_cli(kafka_bootstrap, new_topic, tmp_path,
                                              capsys) -> None:
    path = write_csv(tmp_path / "cli.csv", 500, fraud_rate=0.02, seed=3)  # 2 days: 2d > all
    topic = new_topic(kafka_bootstrap)
    labels_topic = f"test-labels-{uuid.uuid4().hex[:8]}"
    assert run_cli("replay", "--csv", str(path), "--bootstrap-servers", kafka_bootstrap,
                   "--topic", topic, "--labels", "delayed:2d", "--labels-topic", labels_topic,
                   "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["sent"], summary["labels_sent"], summary["labels_topic"]) == (
        500, 10, labels_topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        [described] = admin.describe_topics([labels_topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 3
    labels = [LabelV1.model_validate_json(r.value)
              for r in consume(kafka_bootstrap, labels_topic, 10)]
    assert len(labels) == 10 and all(la.reason == "replayed Class=1 after 2d" for la in labels)
    assert all("is_fraud" not in json.loads(r.value)
               for r in consume(kafka_bootstrap, topic, 500))


@pytest.mark.kafka
def test_labels_none_and_deprecated_no_labels(kafka_bootstrap, new_topic, tmp_path,
                                              capsys) -> None:
    path = write_csv(tmp_path / "quiet.csv", 100, fraud_rate=0.05, seed=6)
    for flags in (["--labels", "none"], ["--no-labels"]):
        topic = new_topic(kafka_bootstrap)
        assert run_cli("replay", "--csv", str(path), "--bootstrap-servers", kafka_bootstrap,
                       "--topic", topic, "--json", *flags) == 0
        captured = capsys.readouterr()
        summary = json.loads(captured.out)
        assert (summary["sent"], summary["labels_sent"], summary["labels_topic"]) == (
            100, 0, None)
        assert ("deprecated" in captured.err) == (flags == ["--no-labels"])
        assert all("is_fraud" not in json.loads(r.value)
                   for r in consume(kafka_bootstrap, topic, 100))


def test_bad_labels_values_fail_before_connecting(tmp_path) -> None:
    path = write_csv(tmp_path / "x.csv", 5)
    with pytest.raises(FraudstreamError, match="bad duration 'soon'"):
        replay(str(path), bootstrap="127.0.0.1:1", topic="t", labels="delayed:soon")
    with pytest.raises(FraudstreamError, match="--no-labels conflicts"):
        run_cli("replay", "--csv", str(path), "--bootstrap-servers", "127.0.0.1:1",
                "--labels", "delayed:1h", "--no-labels")
