"""docker-compose.yml run for real on the local images (Docker engine started by .ci/run):
the replay simulation end to end, a scorer container killed mid-run, and the Kafka test fixture's
testcontainers path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from producer.broker import free_port
from tests.ci import missing
from tests.compose_file import ROOT, compose_command, docker_or_skip, local_images

# --------------------------------------------------------------- the stack, run for real

SIM_ROWS = 20_000
#: The trainer trains on the earlier half by Time (TRAIN_SHARE 0.5); the producer replays the rest.
REPLAYED = SIM_ROWS - SIM_ROWS // 2
SIM_SPEEDUP = "2160"  # the replayed half spans a day: a ~40 s replay, so a kill lands mid-run


OFFLINE_AND_STREAMED = """
import json, os
import numpy as np
from sqlalchemy import func, select
from producer.replay import source_tag, transaction_id
from scorer.model import load_model
from store.counts import matured_counts
from store.db import connect
from store.tables import alerts, decisions
from trainer.data import load_csv

csv = os.path.join(os.environ["SPLIT_DIR"], "replay.csv")  # what the producer replayed
engine = connect(os.environ["FRAUDSTREAM_DB_URL"])
model = load_model(engine, "production")
data = load_csv(csv)
flagged = model.score_raw(data.raw) >= model.threshold
fraud = data.y == 1
tag = source_tag(csv)
ids = [transaction_id(tag, line) for line in range(2, len(flagged) + 2)]
offline = {"rows": len(ids), "frauds": int(fraud.sum()),
           "tp": int(np.sum(flagged & fraud)), "fp": int(np.sum(flagged & ~fraud)),
           "tn": int(np.sum(~flagged & ~fraud)), "fn": int(np.sum(~flagged & fraud)),
           "alerts": sorted(i for i, f in zip(ids, flagged) if f)}
(row,) = matured_counts(engine).rows
with engine.connect() as conn:
    alert_ids = [r[0] for r in conn.execute(select(alerts.c.transaction_id))]
    n = conn.execute(select(func.count()).select_from(decisions)).scalar()
streamed = {"rows": n, "frauds": row.labelled, "tp": row.tp, "fp": row.fp, "tn": row.tn,
            "fn": row.fn, "alerts": sorted(alert_ids), "pending": row.pending}
print(json.dumps({"offline": offline, "streamed": streamed}))
"""


class Stack:
    """One compose project of docker-compose.yml, driven through the Docker Compose CLI."""

    def __init__(self, docker: str, env: dict[str, str]) -> None:
        self.docker, self.env = docker, env
        self.dc = compose_command(docker)
        self.project = env["COMPOSE_PROJECT_NAME"]

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.dc, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
        return proc.stdout

    def containers(self, service: str) -> list[str]:
        return self.run("ps", "-aq", service).split()

    def state(self, service: str) -> tuple[str, int] | None:
        ids = self.containers(service)
        if not ids:
            return None
        out = subprocess.run(
            [self.docker, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", ids[0]],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.split()
        return (out[0], int(out[1])) if len(out) == 2 else None

    def sql(self, query: str) -> int:
        out = self.run(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-qtA",
            "-U",
            "fraudstream",
            "-d",
            "fraudstream",
            "-c",
            query,
            check=False,
        )
        return int(out.strip()) if out.strip().isdigit() else 0

    def logs(self, *services: str) -> str:
        return self.run("logs", "--no-color", "--tail", "40", *services, check=False)

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        found = {}
        for kind in ("container", "volume", "network"):
            args = [self.docker, kind, "ls", "-q", "--filter", label]
            if kind == "container":
                args.insert(3, "-a")
            found[kind] = subprocess.run(
                args, capture_output=True, text=True, timeout=60
            ).stdout.split()
        return found


def wait_until(what: str, check, stack: Stack, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{stack.logs()}")


def prometheus_query(port: str, query: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback only)
        return json.loads(response.read())


@pytest.mark.slow
def test_the_stack_replays_the_later_rows_exactly_with_a_scorer_killed_mid_run() -> None:
    """docker-compose.yml on local images: trainer (on the earlier half of the rows by Time),
    producer (the later half), 2 scorers (one docker-killed while the replay runs), label sink
    and Prometheus; the stored counts and alerts equal an offline scoring of the replayed rows
    exactly, and `down -v` leaves nothing behind."""
    docker = docker_or_skip()
    started = time.monotonic()
    images = local_images()
    built = time.monotonic()
    env = {
        **os.environ,
        **images,
        "COMPOSE_PROJECT_NAME": f"fraudstream-test-{os.getpid()}",
        "POSTGRES_PASSWORD": uuid.uuid4().hex,
        "SYNTH_ROWS": str(SIM_ROWS),
        "SYNTH_SEED": "11",
        "EPOCHS": "2",
        "SPEEDUP": SIM_SPEEDUP,
        "PROMETHEUS_PORT": str(free_port()),
        "GRAFANA_PORT": str(free_port()),
        "DESK_PORT": str(free_port()),
        "COMPOSE_BAKE": "false",
        "DOCKER_BUILDKIT": "0",
    }
    for name in ("CSV", "LABELS", "RETRAIN", "TRAIN_SHARE", "SPLIT_DIR", "POSTGRES_USER",
                 "POSTGRES_DB"):
        env.pop(name, None)
    stack = Stack(docker, env)
    stack.run("build", timeout=1800)
    try:
        # no Grafana image can be built locally: that one service is left out (and not pulled)
        stack.run("up", "-d", "--scale", "grafana=0", "--pull", "never", timeout=900)
        # mid-run: some decisions committed, far from all (the paced replay takes ~40 s)
        wait_until(
            "the first decisions",
            lambda: stack.sql("SELECT count(*) FROM decisions") >= REPLAYED // 10,
            stack,
            timeout=600,
        )
        scorers = stack.containers("scorer")
        assert len(scorers) == 2
        subprocess.run([docker, "kill", scorers[0]], check=True, capture_output=True, timeout=60)
        at_kill = stack.sql("SELECT count(*) FROM decisions")
        assert at_kill < REPLAYED, "every event was decided before the kill"
        assert stack.state("scorer") is not None

        wait_until(
            "the replay to finish",
            lambda: (stack.state("producer") or ("", 0))[0] == "exited",
            stack,
            600,
        )
        assert stack.state("producer") == ("exited", 0), stack.logs("producer")
        wait_until(
            "every event decided",
            lambda: stack.sql("SELECT count(*) FROM decisions") == REPLAYED,
            stack,
            timeout=600,
        )
        seen: list[int] = []

        def labels_idle() -> bool:
            seen.append(stack.sql("SELECT count(*) FROM labels"))
            return len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3] > 0

        wait_until("the label sink to go idle", labels_idle, stack, timeout=300, every=3)

        out = stack.run(
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--entrypoint",
            "python",
            "trainer",
            "-c",
            OFFLINE_AND_STREAMED,
            timeout=600,
        )
        result = json.loads(out.strip().splitlines()[-1])
        offline, streamed = result["offline"], result["streamed"]
        assert streamed["pending"] == 0
        assert offline["rows"] == REPLAYED and offline["frauds"] > 0
        assert {k: streamed[k] for k in offline if k != "alerts"} == {
            k: offline[k] for k in offline if k != "alerts"
        }
        assert streamed["alerts"] == offline["alerts"]  # the same transactions, each once

        # Prometheus scrapes both scorers (the killed one came back or was replaced) and the
        # label sink; every query of the Grafana dashboard is valid PromQL against it.
        port = env["PROMETHEUS_PORT"]

        def targets_up() -> bool:
            data = prometheus_query(port, 'sum by (job) (up{job=~"fraudstream-.*"})')
            up = {r["metric"]["job"]: float(r["value"][1]) for r in data["data"]["result"]}
            return (up.get("fraudstream-labels") == 1 and up.get("fraudstream-desk") == 1
                    and up.get("fraudstream-scorer", 0) >= 1)

        wait_until("Prometheus to scrape the services", targets_up, stack, timeout=120, every=3)
        # The desk answers on its loopback port (its login page; nothing without a login).
        desk = f"http://127.0.0.1:{env['DESK_PORT']}"
        with urllib.request.urlopen(f"{desk}/login", timeout=10) as page:
            assert page.status == 200 and b"password" in page.read().lower()
        try:
            urllib.request.urlopen(f"{desk}/api/alerts", timeout=10)
            raise AssertionError("the desk API answered without a login")
        except urllib.error.HTTPError as refused:
            assert refused.code == 401
        scored = prometheus_query(port, "sum(fraudstream_events_scored_total)")
        assert scored["data"]["result"], "no scorer metrics in Prometheus"
        dashboard = json.loads((ROOT / "deploy/grafana/dashboards/fraudstream.json").read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                answer = prometheus_query(port, target["expr"])
                assert answer["status"] == "success", (panel["title"], target["expr"], answer)
        finished = time.monotonic()
    finally:
        stack.run("down", "-v", "--remove-orphans", timeout=300, check=False)
    assert stack.leftovers() == {"container": [], "volume": [], "network": []}
    print(
        f"compose simulation: images {built - started:.0f} s, stack {finished - built:.0f} s, "
        f"scorer killed after {at_kill} of {REPLAYED} decisions"
    )


def test_the_kafka_fixture_runs_the_local_image_through_testcontainers() -> None:
    """tests/kafka_fixture.py's container path: the locally built Kafka image, started by
    testcontainers on loopback with the local broker's settings, answers a Kafka client and is
    removed afterwards."""
    from kafka import KafkaAdminClient

    from producer.topics import ensure_topics
    from tests.kafka_fixture import CONTAINER_LABEL, kafka_container, local_kafka_image

    docker = docker_or_skip()
    image = local_kafka_image()
    if image is None:
        missing("the local Kafka image is not built", "bash deploy/images/build.sh kafka")
    with kafka_container(image) as bootstrap:
        assert bootstrap.startswith("127.0.0.1:")
        ensure_topics(bootstrap, {"fixture-check": 3})
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            (topic,) = admin.describe_topics(["fixture-check"])
            assert len(topic["partitions"]) == 3
        finally:
            admin.close()
        running = subprocess.run(
            [docker, "ps", "-q", "--filter", f"label={CONTAINER_LABEL}=kafka"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        assert running
    left = subprocess.run(
        [docker, "ps", "-aq", "--filter", f"id={running[0]}"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert left == []


def test_the_session_broker_runs_from_the_local_image_when_docker_has_it(kafka_bootstrap) -> None:
    """The ``kafka_bootstrap`` fixture that the Kafka tests share: with Docker and the local
    Kafka image present (as in CI), the broker is that image's container; otherwise the local
    broker (the fallback this test does not need to check)."""
    from tests.kafka_fixture import CONTAINER_LABEL, local_kafka_image

    docker = shutil.which("docker")
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or not docker or local_kafka_image() is None:
        pytest.skip("no local Kafka image here: the fixture uses the local broker")
    ids = subprocess.run(
        [docker, "ps", "-q", "--filter", f"label={CONTAINER_LABEL}=kafka"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    port = kafka_bootstrap.rsplit(":", 1)[1]
    envs = [
        subprocess.run(
            [docker, "inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", cid],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        for cid in ids
    ]
    assert any(f"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:{port}" in e for e in envs)
