"""Engine creation with Alembic migrations applied automatically on first use.

SQLite (default) and PostgreSQL are supported. SQLite connections take the write lock at
``BEGIN`` (``BEGIN IMMEDIATE``) so that concurrent scorers serialise instead of deadlocking.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from schemas.errors import FraudstreamError
from store.settings import db_url, redact

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DatabaseUnavailable(FraudstreamError):
    """The database could not be reached or opened."""


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN itself
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA busy_timeout=60000")

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        try:
            import psycopg  # noqa: F401

            parsed = parsed.set(drivername="postgresql+psycopg")
        except ImportError:
            pass
    return create_engine(parsed, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def connect(url: str | None = None, *, attempts: int = 3, wait_s: float = 1.0) -> Engine:
    """An engine for ``url`` (flag > env > default) with the schema migrated to head.

    Raises :class:`DatabaseUnavailable` with the (password-redacted) URL when the database
    cannot be reached after ``attempts`` tries.
    """
    url = db_url(url)
    engine = _make_engine(url)
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            migrate(engine)
            return engine
        except OperationalError as exc:
            if attempt == attempts:
                reason = str(exc.orig or exc).strip().splitlines()[0]
                raise DatabaseUnavailable(
                    f"database {redact(url)} is unreachable: {reason}"
                ) from exc
            time.sleep(wait_s * attempt)
    raise AssertionError("unreachable")
