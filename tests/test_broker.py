"""`fraudstream kafka up|down|status`: a second real broker on free ports, in a tmp data dir."""

from __future__ import annotations

import argparse
import json
import shutil
import socket

import pytest

from producer import cli
from producer.broker import LocalBroker, bootstrap_servers, free_port
from schemas.errors import FraudstreamError
from stream.cli import reachable_broker
from tests.ci import missing
from trainer.synth import write_csv

pytestmark = pytest.mark.kafka


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def needs_java() -> None:
    if shutil.which("java") is None:
        missing("java is not installed", "apt-get install openjdk-17-jre-headless")


def test_bootstrap_servers_precedence(monkeypatch: pytest.MonkeyPatch, home) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert bootstrap_servers(None) == "127.0.0.1:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:1234")
    assert bootstrap_servers(None) == "10.0.0.1:1234"
    assert bootstrap_servers("h:1") == "h:1"


def test_commands_find_the_broker_the_home_started(kafka_bootstrap, new_topic, home, tmp_path,
                                                   monkeypatch, capsys) -> None:
    """After `kafka up --port P` (as `make demo` runs it on KAFKA_PORT), every command of that
    home talks to 127.0.0.1:P without being told: the port its data directory recorded."""
    import fraudstream_cli

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert bootstrap_servers(None) == "127.0.0.1:9092"  # this home never started a broker
    assert not (home / "kafka").exists()  # looking created nothing
    host, _, port = kafka_bootstrap.rpartition(":")
    assert host == "127.0.0.1", kafka_bootstrap
    (home / "kafka").mkdir()  # what `kafka up --port P` records for the home's broker
    (home / "kafka" / "broker.json").write_text(
        json.dumps({"port": int(port), "controller_port": int(port) + 1}) + "\n")
    assert bootstrap_servers(None) == reachable_broker(None) == kafka_bootstrap
    assert bootstrap_servers("h:1") == "h:1"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:1234")
    assert bootstrap_servers(None) == "10.0.0.1:1234"  # the environment still wins
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    topic = new_topic(kafka_bootstrap)
    csv = write_csv(tmp_path / "few.csv", 40, seed=3)
    argv = ["replay", "--csv", str(csv), "--topic", topic, "--labels", "none", "--json"]
    assert fraudstream_cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["sent"] == 40


def test_status_with_nothing_listening(tmp_path, capsys) -> None:
    port = free_port()
    assert not LocalBroker(tmp_path / "k", port=port).is_ready()
    assert run_cli("kafka", "status", "--data-dir", str(tmp_path / "k"), "--port", str(port)) == 1
    assert f"not answering at 127.0.0.1:{port}" in capsys.readouterr().out


def test_up_status_idempotent_down(tmp_path, capsys, needs_java) -> None:
    data, port = tmp_path / "kafka", free_port()
    args = ("--data-dir", str(data), "--port", str(port))
    try:
        assert run_cli("kafka", "up", *args) == 0
        assert capsys.readouterr().out.strip() == f"127.0.0.1:{port}"
        broker = LocalBroker(data)  # port read back from broker.json
        assert broker.port == port and broker.is_ready()
        pid = broker.pid()
        assert pid is not None and (data / "broker.pid").read_text().strip() == str(pid)
        assert (data / "logs" / "meta.properties").is_file()  # storage formatted

        assert run_cli("kafka", "status", *args) == 0
        assert f"up at 127.0.0.1:{port}" in capsys.readouterr().out

        assert run_cli("kafka", "up", *args) == 0  # idempotent: same JVM, same address
        assert capsys.readouterr().out.strip() == f"127.0.0.1:{port}"
        assert LocalBroker(data).pid() == pid
    finally:
        assert run_cli("kafka", "down", *args) == 0
    assert not LocalBroker(data).is_ready()
    assert LocalBroker(data).pid() is None and not (data / "broker.pid").exists()
    assert run_cli("kafka", "status", *args) == 1
    assert run_cli("kafka", "down", *args) == 0  # idempotent


def test_up_refuses_a_port_taken_by_something_else(tmp_path, needs_java) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(FraudstreamError, match=f"port {port} is already in use"):
            LocalBroker(tmp_path / "kafka", port=port).up()
    assert not (tmp_path / "kafka" / "broker.pid").exists()
