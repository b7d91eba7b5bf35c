"""Shared fixtures: a real Kafka broker (tests/kafka_fixture.py) and real databases.

``db_url`` is parametrised over SQLite (always) and PostgreSQL (``FRAUDSTREAM_TEST_PG_URL``,
which ``.ci/run`` provides). With ``CI=true`` a missing PostgreSQL fails the test instead of
skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
import pytest

from store.db import empty_postgres
from tests.ci import missing
from tests.kafka_fixture import kafka_bootstrap, new_topic  # noqa: F401

PG_ENV = "FRAUDSTREAM_TEST_PG_URL"


def postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        missing(f"{PG_ENV} is not set", "run `bash deploy/postgres-for-tests.sh`")
    return url


reset_postgres = empty_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fraudstream.db'}"
        return
    url = postgres_url()
    reset_postgres(url)
    yield url


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated FRAUDSTREAM_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(path))
    monkeypatch.delenv("FRAUDSTREAM_DB_URL", raising=False)
    return path
