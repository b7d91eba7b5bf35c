"""The scorer refuses to start, with one clear line, when its inputs are unusable."""

import subprocess
import sys

import pytest

from producer.broker import free_port


def score(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "fraudstream_cli", "score", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def last_line(proc):
    return proc.stderr.strip().splitlines()[-1]


def test_unreachable_broker(home):
    proc = score("--bootstrap-servers", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 2
    assert last_line(proc).startswith("fraudstream score: error: cannot reach Kafka at 127.0.0.1:")


@pytest.mark.kafka
def test_unreachable_database_and_missing_model(kafka_bootstrap, home):
    proc = score("--bootstrap-servers", kafka_bootstrap,
                 "--db", "postgresql+psycopg://u:topsecret@127.0.0.1:1/x")
    assert proc.returncode == 2
    assert "database postgresql+psycopg://u:***@127.0.0.1:1/x is unreachable" in last_line(proc)
    assert "topsecret" not in proc.stderr
    proc = score("--bootstrap-servers", kafka_bootstrap)
    assert proc.returncode == 2
    assert last_line(proc) == ("fraudstream score: error: no production model is registered "
                               "(run `fraudstream train` first)")
    assert score("--bootstrap-servers", kafka_bootstrap, "--batch-size", "0").returncode == 2
