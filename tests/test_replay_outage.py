"""`fraudstream replay` while the broker dies (kill -9) mid-stream: the command still ends with
its summary (exit 1, no traceback), names the --skip to resume from, and resuming from there
after the broker is back completes the topic (ids are deterministic, so re-sends are harmless).

Uses its own broker (not the session one), since it kills it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from producer.broker import LocalBroker, free_port
from schemas.errors import FraudstreamError
from tests.ci import missing
from tests.kafka_fixture import create_topic
from tests.test_replay import csv_rows
from trainer.synth import write_csv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ROWS = 6000
RATE = 1000  # events/s: the first run lasts ~6 s
DELIVERY_TIMEOUT_S = 5  # unacknowledged events fail this soon after the broker dies
KILL_AFTER = 1500  # records on the topic before the broker is killed


def _start(broker: LocalBroker) -> str:
    try:
        return broker.up()
    except FraudstreamError as exc:  # no Java/Maven
        broker.down()
        missing("no Kafka broker", str(exc))


def _consumer(bootstrap: str, topic: str) -> tuple[KafkaConsumer, list[TopicPartition]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, request_timeout_ms=5000)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    return consumer, parts


def _wait_for_records(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> int:
    """Block until ``topic`` holds at least ``count`` records; return how many it holds."""
    consumer, parts = _consumer(bootstrap, topic)
    try:
        deadline = time.monotonic() + timeout
        while True:
            held = sum(consumer.end_offsets(parts).values())
            if held >= count or time.monotonic() > deadline:
                return held
            time.sleep(0.05)
    finally:
        consumer.close()


def _all_records(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of ``topic``, read up to its end offsets."""
    consumer, parts = _consumer(bootstrap, topic)
    try:
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            assert time.monotonic() < deadline, "topic not read to its end in time"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _replay(*argv: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "fraudstream_cli", "replay", *argv, "--json"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_broker_killed_mid_replay_reports_and_resumes(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "k", free_port()
    broker = LocalBroker(data_dir, port=port)
    restarted: LocalBroker | None = None
    try:
        bootstrap = _start(broker)
        topic = create_topic(bootstrap, partitions=3)
        path = write_csv(tmp_path / "outage.csv", ROWS, fraud_rate=0.02, seed=21)
        common = ["--csv", str(path), "--bootstrap-servers", bootstrap, "--topic", topic,
                  "--delivery-timeout", str(DELIVERY_TIMEOUT_S)]

        started = time.monotonic()
        run = _replay(*common, "--rate", str(RATE))
        held = _wait_for_records(bootstrap, topic, KILL_AFTER)
        assert held >= KILL_AFTER and run.poll() is None, "replay finished before the kill"
        pid = broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=60)
        elapsed = time.monotonic() - started

        assert "Traceback" not in err, err
        assert run.returncode == 1, (out, err)
        summary = json.loads(out)
        assert summary["rows"] == ROWS and summary["invalid"] == 0
        assert summary["sent"] + summary["failed"] + summary["invalid"] == ROWS
        assert summary["failed"] > 0 and summary["first_error"]
        resume = summary["resume_skip"]
        assert resume is not None and 0 < resume <= summary["sent"] < ROWS
        assert summary["resume_limit"] is None
        assert elapsed < 6 + DELIVERY_TIMEOUT_S + 30  # ended soon after sends expired

        broker.down()  # reaps the killed JVM, forgets its pid
        restarted = LocalBroker(data_dir, port=port)
        assert restarted.up() == bootstrap
        rerun = _replay(*common, "--skip", str(resume))
        out, err = rerun.communicate(timeout=90)
        assert rerun.returncode == 0, (out, err)
        again = json.loads(out)
        assert (again["sent"], again["failed"], again["resume_skip"]) == (ROWS - resume, 0, None)

        ids = {json.loads(r.value)["transaction_id"] for r in _all_records(bootstrap, topic)}
        assert ids == {f"outage-{line:09d}" for line in csv_rows(path)}
    finally:
        if restarted is not None:
            restarted.down()
        broker.down()
