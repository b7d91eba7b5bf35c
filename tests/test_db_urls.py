"""Database URL mistakes, read-only connects and vanished SQLite files: one clear line each.

Real SQLite files and the real PostgreSQL (``FRAUDSTREAM_TEST_PG_URL``); nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from schemas.errors import FraudstreamError
from store import settings
from store.db import (
    BadDatabaseURL,
    DatabaseAuthFailed,
    DatabaseUnavailable,
    DatabaseVanished,
    NoDatabase,
    connect,
)
from tests.conftest import postgres_url

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3tpw"


def one_line_error(url: str | None, *words: str, kind: type[Exception] = FraudstreamError,
                   **kwargs: object) -> str:
    """Assert ``connect(url)`` fails with ``kind``, one line naming ``words``, no password."""
    with pytest.raises(kind) as info:
        connect(url, attempts=1, wait_s=0, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert SECRET not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


@pytest.mark.parametrize(("url", "words"), [
    ("sqlite:/tmp/x.db", ["bad database URL 'sqlite:/tmp/x.db'", "sqlite:///path/to/file.db",
                          "postgresql://user@host:5432/db"]),
    ("sqlite:tmp.db", ["bad database URL", "three slashes"]),
    ("/tmp/x.db", ["bad database URL", "file path"]),
    (f"postgresql://u:{SECRET}@127.0.0.1:notaport/db", ["port 'notaport' is not a number",
                                                        "u:***@"]),
    (f"postgresql://u:{SECRET}@127.0.0.1:/db", ["empty port"]),
    (f"postgresql://u:{SECRET}@127.0.0.1:99999/db", ["port 99999 is out of range"]),
    (f"mysql://u:{SECRET}@127.0.0.1/db", ["unsupported database 'mysql'", "sqlite and postgresql"]),
    (f"foo://u:{SECRET}@h/db", ["unsupported database 'foo'"]),
    (f"postgresql+nosuchdriver://u:{SECRET}@h/db", ["unknown postgresql driver 'nosuchdriver'"]),
    (f"postgresql+pg8000://u:{SECRET}@h/db", ["driver 'pg8000' is not installed"]),
    ("sqlite+aiosqlite:///x.db", ["driver 'aiosqlite' is not installed"]),
    ("sqlite://", ["in-memory"]),
    ("sqlite:///:memory:", ["in-memory"]),
    (f"postgresql://u:p@{SECRET}@127.0.0.1/db", ["more than one '@'", "%40"]),
])
def test_bad_urls_are_one_line(url: str, words: list[str]) -> None:
    one_line_error(url, *words, kind=BadDatabaseURL)


def test_postgres_scheme_is_postgresql() -> None:
    """``postgres://`` used to be NoSuchModuleError; now it is PostgreSQL via psycopg 3."""
    message = one_line_error(f"postgres://u:{SECRET}@127.0.0.1:1/db", "unreachable",
                             "postgres://u:***@127.0.0.1:1/db", kind=DatabaseUnavailable)
    assert "NoSuchModule" not in message


@pytest.mark.postgres
def test_postgres_scheme_connects_to_the_real_server() -> None:
    url = make_url(postgres_url()).set(drivername="postgres").render_as_string(False)
    assert url.startswith("postgres://")
    engine = connect(url)
    assert engine.dialect.driver == "psycopg"
    assert "alembic_version" in inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.postgres
def test_wrong_postgres_password_is_authentication_not_unreachable() -> None:
    real = make_url(postgres_url())
    url = real.set(password=SECRET).render_as_string(hide_password=False)
    message = one_line_error(url, "authentication failed for user", real.username or "",
                             f"{real.host}:{real.port or 5432}", kind=DatabaseAuthFailed)
    assert "unreachable" not in message
    assert (real.password or "(none)") not in message


@pytest.mark.postgres
def test_missing_postgres_database_and_bad_options() -> None:
    real = make_url(postgres_url())
    missing = real.set(database="fraudstream_no_such_db").render_as_string(False)
    one_line_error(missing, "database fraudstream_no_such_db does not exist",
                   kind=DatabaseUnavailable)
    bogus = real.update_query_dict({"sslmode": "bogus"}).render_as_string(False)
    one_line_error(bogus, "bad database URL", "sslmode", kind=BadDatabaseURL)


def test_explicit_relative_sqlite_url_into_missing_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    one_line_error(
        "sqlite:///tmp/nodir/x.db",
        f"database directory {tmp_path / 'tmp' / 'nodir'} does not exist",
        "(sqlite:///tmp/nodir/x.db is a relative path; use sqlite:////tmp/nodir/x.db for an "
        "absolute one)", kind=BadDatabaseURL)
    assert not (tmp_path / "tmp").exists()
    one_line_error(f"sqlite:///{tmp_path}/nodir/x.db", "does not exist", kind=BadDatabaseURL)
    assert not (tmp_path / "nodir").exists()


def test_relative_sqlite_url_in_existing_directory_is_resolved_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = connect("sqlite:///rel.db")
    assert engine.url.database == str(tmp_path / "rel.db")
    monkeypatch.chdir("/")
    with engine.begin() as conn:  # still the same file after a chdir
        conn.execute(text("SELECT 1"))
    engine.dispose()


def test_default_database_creates_its_home(tmp_path, monkeypatch) -> None:
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(home))
    monkeypatch.delenv("FRAUDSTREAM_DB_URL", raising=False)
    connect().dispose()
    assert (home / "fraudstream.db").is_file()


def test_sqlite_path_is_a_directory(tmp_path) -> None:
    one_line_error(f"sqlite:///{tmp_path}", f"database path {tmp_path} is a directory",
                   kind=DatabaseUnavailable)


def test_sqlite_file_that_is_not_a_database(tmp_path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the pages you are looking for\n" * 200)
    one_line_error(f"sqlite:///{path}", str(path), "not a SQLite database",
                   kind=DatabaseUnavailable)
    assert path.read_text().startswith("these are not")


def test_read_only_connect_never_creates(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FRAUDSTREAM_HOME", str(home))
    monkeypatch.delenv("FRAUDSTREAM_DB_URL", raising=False)
    one_line_error(None, f"no database at {home / 'fraudstream.db'}", "nothing has been scored",
                   "--db", "FRAUDSTREAM_DB_URL", kind=NoDatabase, create=False)
    assert not home.exists()
    assert settings.home(create=False) == home and not home.exists()

    path = tmp_path / "absent.db"
    one_line_error(f"sqlite:///{path}", f"no database at {path}", kind=NoDatabase, create=False)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.chdir(tmp_path)
    one_line_error("sqlite:///rel/x.db", "is a relative path", kind=NoDatabase, create=False)
    assert list(tmp_path.iterdir()) == []


def test_read_only_connect_migrates_an_existing_database(tmp_path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # exists, but no schema yet
    engine = connect(f"sqlite:///{path}", create=False)
    assert {"alerts", "alembic_version"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_cli_bad_url_is_one_line_exit_2() -> None:
    env = {**os.environ, "FRAUDSTREAM_DB_URL": ""}
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", "counts", "--db",
                           "sqlite:/tmp/x.db"], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "bad database URL 'sqlite:/tmp/x.db'" in lines[0]


# --------------------------------------------------------------------------- vanished files


def _engine_with_a_row(path: Path):
    engine = connect(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        conn.execute(text("INSERT INTO probe VALUES (1)"))
    return engine


def test_vanished_is_permanent_not_transient() -> None:
    for transient in (DBAPIError, OSError, DatabaseUnavailable):
        assert not issubclass(DatabaseVanished, transient)
    assert issubclass(DatabaseVanished, FraudstreamError)


def test_deleted_database_file_stops_every_transaction(tmp_path) -> None:
    path = tmp_path / "x.db"
    engine = _engine_with_a_row(path)
    path.unlink()
    with pytest.raises(DatabaseVanished) as info:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO probe VALUES (2)"))
    message = str(info.value)
    assert message == (f"database file {path} was deleted or replaced while in use; stopping "
                       "(effects since it vanished were not kept — restore the file or start "
                       "again)")
    with pytest.raises(DatabaseVanished):  # autobegin on a plain connection too
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    engine.dispose()  # a fresh pooled connection must not silently create a new, empty file
    with pytest.raises(DatabaseVanished):
        with engine.begin():
            pass
    assert not path.exists()


def test_replaced_database_file_stops(tmp_path) -> None:
    path = tmp_path / "x.db"
    engine = _engine_with_a_row(path)
    shutil.copy(path, tmp_path / "copy.db")
    os.replace(tmp_path / "copy.db", path)  # same name, different file (e.g. a restore)
    with pytest.raises(DatabaseVanished):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO probe VALUES (2)"))
    engine.dispose()


def test_file_deleted_inside_a_transaction_fails_the_commit(tmp_path) -> None:
    path = tmp_path / "x.db"
    engine = _engine_with_a_row(path)
    with pytest.raises(DatabaseVanished):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO probe VALUES (2)"))
            path.unlink()
    engine.dispose()


def test_untouched_database_keeps_working(tmp_path) -> None:
    (tmp_path / "odd #?% dir").mkdir()
    path = tmp_path / "odd #?% dir" / "x é.db"  # reopened as a file: URI, so quoting matters
    engine = _engine_with_a_row(path)
    engine.dispose()
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM probe")).scalar_one() == 1
    engine.dispose()


@pytest.mark.parametrize("argv", [["counts"], ["alerts", "list"], ["models", "list"],
                                  ["store", "prune", "--before", "2013-09-02"]])
def test_read_only_commands_never_create_a_database(tmp_path, argv):
    home = tmp_path / "nowhere"
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home)}
    env.pop("FRAUDSTREAM_DB_URL", None)
    proc = subprocess.run([sys.executable, "-m", "fraudstream_cli", *argv], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no database at" in lines[0] and "Traceback" not in proc.stderr
    assert not home.exists()
