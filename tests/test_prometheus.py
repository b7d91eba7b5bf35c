"""The real Prometheus (Debian package ``prometheus``): ``promtool`` checks and unit-tests the
alert rules, and a Prometheus server on loopback scrapes a running scorer during a replay;
PromQL through its HTTP API must see every event.

Without the binaries these tests are skipped, except with ``CI=true`` (``.ci/run`` installs
them), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from producer.broker import free_port
from schemas.features import MODEL_FEATURES
from tests.ci import missing
from tests.scoring_helpers import finish, replay_all, scorer_process, setup_model
from trainer.synth import write_csv

RULES_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
EVENTS = 3000


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK)
                                   else None)
    if found is None:
        missing(f"`{name}` is not installed", "apt-get install prometheus")
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([binary("promtool"), "check", "rules", "rules.yml"], cwd=RULES_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_fire_each_alert_and_stay_quiet_when_healthy() -> None:
    done = subprocess.run([binary("promtool"), "test", "rules", "rules_test.yml"],
                          cwd=RULES_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every alert of rules.yml is exercised by the unit tests, firing at least once.
    rules = (RULES_DIR / "rules.yml").read_text()
    tests = (RULES_DIR / "rules_test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")]
    assert len(alerts) >= 8
    for name in alerts:
        assert f"alertname: {name}\n        exp_alerts:\n          - exp_labels" in tests, name
        assert f"alertname: {name}, exp_alerts: []" in tests, name  # quiet when healthy


class Prometheus:
    """A Prometheus server on loopback with a temporary config and storage."""

    def __init__(self, tmp: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        jobs = "".join(f"  - job_name: {job}\n    static_configs:\n"
                       f"      - targets: ['{target}']\n" for job, target in targets.items())
        config = tmp / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          f"rule_files:\n  - {RULES_DIR / 'rules.yml'}\n"
                          f"scrape_configs:\n{jobs}")
        self.log = tmp / "prometheus.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [binary("prometheus"), f"--config.file={config}",
                 f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, f"prometheus exited: {self.log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus never became ready"
            time.sleep(0.2)

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[tuple[dict, float]]:
        """The instant vector ``promql`` evaluates to now: [(labels, value)]."""
        data = self.get("/api/v1/query", query=promql)
        assert data["resultType"] == "vector", data
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        assert len(result) <= 1, result
        return result[0][1] if result else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def wait_for(what: str, check, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.kafka
def test_real_prometheus_scrapes_a_scorer_during_a_replay(kafka_bootstrap, new_topic,
                                                          tmp_path, home):
    binary("promtool")
    db_url = f"sqlite:///{tmp_path / 'fraudstream.db'}"
    csv = str(write_csv(tmp_path / "stream.csv", EVENTS, fraud_rate=0.02, seed=17))
    setup_model(csv, db_url, home)
    topic = new_topic(kafka_bootstrap)
    metrics_port = free_port()
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    prometheus = Prometheus(prom_dir, {"fraudstream-scorer": f"127.0.0.1:{metrics_port}"})
    scorer = None
    try:
        scorer = scorer_process(kafka_bootstrap, topic, "metrics", db_url, home,
                                "--batch-size", "500", "--metrics-port", str(metrics_port),
                                "--drift-window", "30d")
        up = 'up{job="fraudstream-scorer"}'
        wait_for("the scorer's /metrics to be scraped", lambda: prometheus.value(up) == 1)
        # The rules loaded into the live server, and the scorer is not reported down.
        groups = prometheus.get("/api/v1/rules")["groups"]
        assert {g["name"] for g in groups} == {"fraudstream.recording", "fraudstream.alerts"}
        assert prometheus.value("fraudstream_events_consumed_total") == 0

        ids = replay_all(csv, kafka_bootstrap, topic)
        assert len(ids) == EVENTS
        consumed = 'sum(fraudstream_events_consumed_total{job="fraudstream-scorer"})'
        wait_for(f"{EVENTS} events consumed, as Prometheus sees it",
                 lambda: prometheus.value(consumed) == EVENTS)
        assert prometheus.value("fraudstream_events_scored_total") == EVENTS
        assert prometheus.value("sum(fraudstream_events_dead_lettered_total)") == 0
        assert prometheus.value("fraudstream_score_count") == EVENTS
        batches = prometheus.value("fraudstream_batch_duration_seconds_count")
        assert batches is not None and batches >= EVENTS / 500
        assert prometheus.value("fraudstream_end_to_end_latency_seconds_count") == EVENTS
        p99 = prometheus.value("histogram_quantile(0.99, "
                               "rate(fraudstream_end_to_end_latency_seconds_bucket[1m]))")
        assert p99 is not None and 0 < p99 < 300
        (info, one), = prometheus.query("fraudstream_model_info")
        assert one == 1 and info["version"] == "1" and 0 < float(info["threshold"]) < 1
        expected_rate = prometheus.value("fraudstream_model_expected_alert_rate")
        assert expected_rate is not None and 0 < expected_rate < 1
        flagged = prometheus.value("fraudstream_events_flagged_total")
        # Lag per partition is exported (refreshed every few seconds) and drops to 0.
        wait_for("lag 0 on every partition", lambda: (
            len(lag := prometheus.query(f'fraudstream_consumer_lag{{topic="{topic}"}}')) == 3
            and all(v == 0 for _, v in lag)), timeout=60)

        # Drift: PSI of every model input and of the score over the window, all of the
        # replay (30 days of event time), against the same data's train split: no drift.
        wait_for("the drift window to hold every event", lambda: prometheus.value(
            "fraudstream_drift_window_events") == EVENTS)
        psi = {m["feature"]: v for m, v in prometheus.query("fraudstream_feature_psi")}
        assert set(psi) == set(MODEL_FEATURES), sorted(psi)
        assert all(0 <= v < 0.2 for v in psi.values()), psi
        score_psi = prometheus.value("fraudstream_score_psi")
        assert score_psi is not None and 0 <= score_psi < 0.2

        os.killpg(scorer.pid, signal.SIGTERM)
        summary = finish(scorer, timeout=120)
        assert summary["consumed"] == EVENTS and summary["flagged"] == flagged
    finally:
        if scorer is not None and scorer.poll() is None:
            os.killpg(scorer.pid, signal.SIGKILL)
            scorer.communicate(timeout=30)
        prometheus.stop()
