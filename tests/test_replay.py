"""`fraudstream replay` against a real broker: every row delivered once, with stable ids."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kafka import KafkaConsumer

from producer import cli
from producer.broker import free_port
from producer.replay import ReplaySummary, replay, source_tag
from schemas.errors import FraudstreamError
from schemas.events import TransactionV1
from schemas.export import JSON_DIR
from schemas.features import CSV_COLUMNS
from trainer.synth import write_csv

pytestmark = pytest.mark.kafka

FIELDS = ("time_s", *(f"v{i}" for i in range(1, 29)), "amount")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((JSON_DIR / "transaction.v1.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def consume(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """All records of ``topic`` (from the start) once ``expected`` have arrived, plus any extra."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= expected:
                for batch in consumer.poll(timeout_ms=1000).values():  # would-be duplicates
                    records.extend(batch)
                break
    finally:
        consumer.close()
    return records


def csv_rows(path: Path) -> dict[int, list[str]]:
    """Data rows by physical line number (header = line 1)."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = {}
        for row in reader:
            rows[reader.line_num] = row
        return rows


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_every_row_delivered_once_with_deterministic_ids(kafka_bootstrap, new_topic, tmp_path,
                                                         validator) -> None:
    path = write_csv(tmp_path / "cards.csv", 3000, fraud_rate=0.02, seed=5)
    topic = new_topic(kafka_bootstrap)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic)
    assert (summary.sent, summary.failed, summary.invalid) == (3000, 0, 0)
    assert summary.partitions == 3 and summary.topic == topic and summary.rate > 0

    records = consume(kafka_bootstrap, topic, 3000)
    assert len(records) == 3000
    rows = csv_rows(path)
    expected_ids = {f"cards-{line:09d}" for line in rows}
    events = [json.loads(r.value) for r in records]
    assert {e["transaction_id"] for e in events} == expected_ids
    assert len({r.partition for r in records}) == 3
    for record, event in zip(records, events, strict=True):
        assert record.key == event["transaction_id"].encode()
        validator.validate(event)
        row = rows[int(event["transaction_id"].rsplit("-", 1)[1])]
        assert [event[f] for f in FIELDS] == [float(x) for x in row[:30]]
        assert event["is_fraud"] == int(row[30]) and event["schema_version"] == 1
    assert sum(e["is_fraud"] for e in events) == 60
    TransactionV1.model_validate_json(records[0].value)


def test_no_labels_and_skip_limit(kafka_bootstrap, new_topic, tmp_path, validator) -> None:
    path = write_csv(tmp_path / "Some File.csv", 50, seed=2)
    topic = new_topic(kafka_bootstrap, partitions=1)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic, skip=10, limit=15,
                     labels=False)
    assert (summary.sent, summary.invalid, summary.partitions) == (15, 0, 1)
    events = [json.loads(r.value) for r in consume(kafka_bootstrap, topic, 15)]
    assert source_tag(str(path)) == "some-file"
    assert [e["transaction_id"] for e in events] == [f"some-file-{n:09d}" for n in range(12, 27)]
    for event in events:
        assert "is_fraud" not in event
        validator.validate(event)


def test_bad_rows_are_counted_and_skipped(kafka_bootstrap, new_topic, tmp_path,
                                          validator) -> None:
    good = ["0", *["0.5"] * 28, "12.50", "0"]
    quirky = ["+3", *[" -1.5"] * 28, "7.", "1.0"]  # valid numbers, but not JSON-shaped text
    lines = [",".join(CSV_COLUMNS)]
    bad = {
        3: ",".join(["1", "abc", *good[2:]]),
        4: ",".join(good[:-1]),  # a column short
        5: ",".join([*good[:29], "-1.00", "0"]),
        6: "",
        7: ",".join([*good[:5], "nan", *good[6:]]),
        8: ",".join([*good[:30], "2"]),
        10: ",".join(["-5", *good[1:]]),
    }
    for line_no in range(2, 13):
        lines.append(bad.get(line_no, ",".join(quirky if line_no == 9 else good)))
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")

    topic = new_topic(kafka_bootstrap)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic)
    assert summary.invalid == len(bad) and summary.failed == 0
    assert summary.sent == 11 - len(bad) and summary.rows == 11
    assert [ex["line"] for ex in summary.invalid_examples] == sorted(bad)
    reasons = " | ".join(ex["reason"] for ex in summary.invalid_examples)
    for phrase in ("V1: not a number", "expected 31 fields, got 30", "Amount: negative",
                   "empty line", "V5: not finite", "Class: must be 0 or 1", "Time: negative"):
        assert phrase in reasons

    events = {json.loads(r.value)["transaction_id"]: json.loads(r.value)
              for r in consume(kafka_bootstrap, topic, summary.sent)}
    assert sorted(events) == [f"bad-{n:09d}" for n in (2, 9, 11, 12)]
    for event in events.values():
        validator.validate(event)
    assert events["bad-000000009"]["time_s"] == 3.0 and events["bad-000000009"]["v1"] == -1.5
    assert events["bad-000000009"]["amount"] == 7.0 and events["bad-000000009"]["is_fraud"] == 1


def test_rate_paces_the_stream(kafka_bootstrap, new_topic, tmp_path) -> None:
    path = write_csv(tmp_path / "paced.csv", 300, seed=1)
    topic = new_topic(kafka_bootstrap)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic, rate=500)
    assert summary.sent == 300 and summary.rate > 0
    assert summary.rate == pytest.approx(300 / summary.seconds, rel=0.01)
    stamps = [r.timestamp for r in consume(kafka_bootstrap, topic, 300)]
    expected_span_ms = 299 / 500 * 1000
    assert max(stamps) - min(stamps) >= 0.5 * expected_span_ms  # not sent as fast as possible


def test_speedup_follows_the_time_column(kafka_bootstrap, new_topic, tmp_path) -> None:
    rows = [",".join([str(t), *["0.1"] * 28, "1.00", "0"]) for t in range(0, 30)]
    path = tmp_path / "clock.csv"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    topic = new_topic(kafka_bootstrap)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic, speedup=50)
    assert summary.sent == 30
    stamps = [r.timestamp for r in consume(kafka_bootstrap, topic, 30)]
    assert max(stamps) - min(stamps) >= 0.5 * (29 / 50 * 1000)


def test_unreachable_broker_is_a_clear_error(tmp_path) -> None:
    path = write_csv(tmp_path / "x.csv", 5)
    port = free_port()
    with pytest.raises(FraudstreamError, match=f"127.0.0.1:{port}"):
        replay(str(path), bootstrap=f"127.0.0.1:{port}", topic="t")


def test_missing_column_and_missing_file(tmp_path) -> None:
    path = tmp_path / "cols.csv"
    header = [c for c in CSV_COLUMNS if c not in ("V7", "Class")]
    path.write_text(",".join(header) + "\n" + ",".join(["1"] * len(header)) + "\n")
    with pytest.raises(FraudstreamError, match="lacks column\\(s\\) V7, Class"):
        replay(str(path), bootstrap="127.0.0.1:1", topic="t")
    with pytest.raises(FraudstreamError, match="not found"):
        replay(str(tmp_path / "absent.csv"), bootstrap="127.0.0.1:1", topic="t")


def test_cli_json_summary(kafka_bootstrap, new_topic, tmp_path, capsys) -> None:
    path = write_csv(tmp_path / "cli.csv", 120, seed=4)
    topic = new_topic(kafka_bootstrap, partitions=2)
    code = run_cli("replay", "--csv", str(path), "--bootstrap-servers", kafka_bootstrap,
                   "--topic", topic, "--json")
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"sent", "failed", "invalid", "invalid_examples", "seconds", "rate",
                            "topic", "partitions", "first_error", "rows", "labels_sent",
                            "labels_failed", "labels_topic", "resume_skip", "resume_limit"}
    assert (summary["sent"], summary["failed"], summary["invalid"]) == (120, 0, 0)
    assert (summary["rows"], summary["resume_skip"], summary["labels_topic"]) == (120, None, None)
    assert (summary["topic"], summary["partitions"]) == (topic, 2)
    assert len(consume(kafka_bootstrap, topic, 120)) == 120

    assert run_cli("replay", "--csv", str(path), "--bootstrap-servers", kafka_bootstrap,
                   "--topic", topic, "--limit", "3") == 0
    assert "sent 3 events" in capsys.readouterr().out


def test_no_labels_does_not_read_class(kafka_bootstrap, new_topic, tmp_path) -> None:
    """With --labels none an unreadable Class is not a reason to drop (or crash on) a row."""
    quirky = ["+3", *[" -1.5"] * 28, "7.", "x"]  # valid but not JSON-shaped numbers; Class junk
    path = tmp_path / "noclass.csv"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + ",".join(quirky) + "\n")
    topic = new_topic(kafka_bootstrap)
    summary = replay(str(path), bootstrap=kafka_bootstrap, topic=topic, labels="none")
    assert (summary.sent, summary.invalid) == (1, 0)
    [record] = consume(kafka_bootstrap, topic, 1)
    assert json.loads(record.value)["amount"] == 7.0


def test_summary_tells_where_to_resume() -> None:
    summary = ReplaySummary(sent=22_800, failed=37_200, invalid=0, invalid_examples=[],
                            seconds=90.0, rate=253.3, topic="transactions", partitions=3,
                            first_error="KafkaTimeoutError('Expiring 8 record(s)')",
                            rows=60_000, resume_skip=22_800, resume_limit=37_200)
    text = summary.human()
    assert ("not confirmed: 37,200 events; resume with --skip 22800 --limit 37200 "
            "(re-sent events are de-duplicated by id)") in text
    assert "first send error: KafkaTimeoutError" in text
    ok = ReplaySummary(sent=3, failed=0, invalid=0, invalid_examples=[], seconds=1.0, rate=3.0,
                       topic="t", partitions=1, rows=3)
    assert "resume" not in ok.human() and "label" not in ok.human()
