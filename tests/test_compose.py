"""Structure of docker-compose.yml (no Docker engine needed).

The compose file is interpolated the way Docker Compose does it (``${VAR:-default}``,
``${VAR:?error}``, ``$$``), then checked against the real ``fraudstream`` argument parser.
Services whose entrypoint is a shell script are *run* with /bin/sh, with a stand-in
``fraudstream`` executable on PATH that parses its argv with the real parser (exit 2 on an
unknown flag) and records it, so every branch of the script is checked with real shell semantics.
Only the ``docker compose config`` check may skip (when no Docker Compose is available).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.compose_file import (
    APP_SERVICES,
    COMPOSE,
    ROOT,
    SECRET,
    MissingRequired,
    commands,
    compose,
    compose_binary,
    environment,
    kafka_internal_listener,
    parse,
    raw_compose,
    run_service,
    strict_parser,
    volume_mounts,
)

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


def test_trainer_synthesises_a_missing_csv_then_splits_it_and_trains(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    csv, parts = tmp_path / "creditcard.csv", tmp_path / "split"
    calls = run_service(trainer, tmp_path, {"CSV": str(csv), "SPLIT_DIR": str(parts)},
                        models_rc=1)
    assert commands(calls) == ["synth", "split", "models", "train"]
    synth, split, train = parse(calls[0]), parse(calls[1]), parse(calls[3])
    assert (synth.rows, synth.seed) == (284807, 1)
    assert csv.exists() and not Path(f"{csv}.partial").exists()  # moved into place when complete
    assert split.csv == str(csv) and split.out_dir == parts and split.train_share == 0.5
    assert train.csv == str(parts / "train.csv")  # the earlier rows only
    assert train.epochs == int(environment(trainer)["EPOCHS"])


def test_trainer_uses_an_existing_csv_and_skips_when_a_model_is_registered(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    csv = tmp_path / "real.csv"
    csv.write_text("Time,Amount,Class\n")
    env = {"CSV": str(csv), "SPLIT_DIR": str(tmp_path / "split"), "TRAIN_SHARE": "0.7"}
    calls = run_service(trainer, tmp_path, env, models_rc=0)
    assert commands(calls) == ["split", "models"]  # the producer still needs the replay part
    assert parse(calls[0]).train_share == 0.7
    calls = run_service(trainer, tmp_path, {**env, "RETRAIN": "1"}, models_rc=0)
    assert commands(calls) == ["split", "train"]
    assert parse(calls[1]).csv == str(tmp_path / "split" / "train.csv")


def test_trainer_passes_a_url_straight_through(tmp_path: Path) -> None:
    trainer = compose()["services"]["trainer"]
    url = "https://example.org/creditcard.csv"
    calls = run_service(trainer, tmp_path, {"CSV": url, "SPLIT_DIR": str(tmp_path / "s")},
                        models_rc=1)
    assert commands(calls) == ["split", "models", "train"] and parse(calls[0]).csv == url


def test_producer_replays_the_later_part_of_the_trainers_csv_with_optional_speedup(
        tmp_path: Path) -> None:
    services = compose()["services"]
    producer, trainer = services["producer"], services["trainer"]
    split_dir = environment(trainer)["SPLIT_DIR"]
    assert environment(producer)["SPLIT_DIR"] == split_dir
    (plain,) = run_service(producer, tmp_path, {})
    (fast,) = run_service(producer, tmp_path, {"SPEEDUP": "60"})
    args = parse(plain)
    assert args.command == "replay" and args.speedup is None and args.rate is None
    assert args.csv == f"{split_dir}/replay.csv" and args.partitions == 3
    assert parse(fast).speedup == 60.0
    # the default CSV and its parts live on the `data` volume, mounted at the same path in both
    data_dir = str(Path(environment(trainer)["CSV"]).parent)
    assert volume_mounts(trainer)["data"] == volume_mounts(producer)["data"] == data_dir
    assert Path(split_dir).parent == Path(data_dir)


def test_the_split_the_services_run_trains_on_the_earlier_rows_and_replays_the_rest(
        tmp_path: Path) -> None:
    """The trainer's `fraudstream split`, run for real on a shuffled synthetic file: the model
    trains on the earlier half by Time, the producer replays the later half, no row in both,
    and the command says which rows went where."""
    import random
    import sys

    from trainer.synth import write_csv

    services = compose()["services"]
    csv, parts = tmp_path / "creditcard.csv", tmp_path / "split"
    write_csv(csv, 400, fraud_rate=0.05, seed=4)  # with its SYNTHETIC marker
    header, *rows = csv.read_text().splitlines(keepends=True)
    random.Random(1).shuffle(rows)
    csv.write_text(header + "".join(rows))
    env = {"CSV": str(csv), "SPLIT_DIR": str(parts)}
    calls = run_service(services["trainer"], tmp_path, env, models_rc=1)
    split_argv, train_argv = calls[0], calls[-1]
    (replay_argv,) = run_service(services["producer"], tmp_path, env)
    done = subprocess.run([sys.executable, "-m", "fraudstream_cli", *split_argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    trained = Path(parse(train_argv).csv).read_text().splitlines(keepends=True)
    replayed = Path(parse(replay_argv).csv).read_text().splitlines(keepends=True)
    assert trained[0] == replayed[0] == header
    assert len(trained) - 1 == len(replayed) - 1 == 200
    assert sorted(trained[1:] + replayed[1:]) == sorted(rows)  # every row once, text unchanged

    def times(lines: list[str]) -> list[float]:
        return [float(line.split(",")[0]) for line in lines[1:]]

    assert times(trained) == sorted(times(trained))
    assert max(times(trained)) <= min(times(replayed))  # nothing replayed is older
    out = done.stdout
    assert "400 data rows, sorted by Time (it was not)" in out and "SYNTHETIC" in out
    assert "rows 1..200 (200 rows, event time " in out and f"{parts / 'train.csv'}" in out
    assert "rows 201..400 (200 rows, event time " in out and f"{parts / 'replay.csv'}" in out
    for part in ("train.csv", "replay.csv"):  # both parts stay marked synthetic
        assert (parts / f"{part}.synthetic.json").is_file()


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
