"""Engine creation with Alembic migrations applied automatically on first use.

SQLite (default) and PostgreSQL are supported. SQLite connections take the write lock at
``BEGIN`` (``BEGIN IMMEDIATE``) so that concurrent scorers serialise instead of deadlocking.

Every mistake in a database URL, and every way of failing to open the database, surfaces as one
:class:`~schemas.errors.FraudstreamError` line with the password redacted:

* :class:`BadDatabaseURL` -- unparseable URL, bad port, unsupported database or missing driver,
  in-memory SQLite, a SQLite directory that does not exist;
* :class:`DatabaseAuthFailed` -- PostgreSQL rejected the user or password (not retried);
* :class:`NoDatabase` -- ``connect(create=False)`` and there is no database file yet;
* :class:`DatabaseUnavailable` -- the base class: unreachable server (retried), a path that is a
  directory, a file that is not a SQLite database, a schema from a newer fraudstream;
* :class:`DatabaseVanished` -- the SQLite file was deleted or replaced while in use. Deliberately
  *not* a ``DatabaseUnavailable``/``DBAPIError``/``OSError``: callers that retry transient
  database errors must stop on it.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from schemas.errors import FraudstreamError, first_line
from store.settings import default_db_url, explicit_db_url, redact

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

URL_EXAMPLES = "expected e.g. sqlite:///path/to/file.db or postgresql://user@host:5432/db"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: SQLite's page cache per connection (KiB) and WAL size (pages) that triggers a checkpoint.
SQLITE_CACHE_KIB = 16 * 1024
SQLITE_CHECKPOINT_PAGES = 10_000


class DatabaseUnavailable(FraudstreamError):
    """The database could not be reached or opened."""


class BadDatabaseURL(DatabaseUnavailable):
    """The database URL itself is wrong: fixing the URL is the only remedy (never retried)."""


class DatabaseAuthFailed(DatabaseUnavailable):
    """PostgreSQL refused the user name or password (never retried)."""


class NoDatabase(DatabaseUnavailable):
    """``connect(create=False)``: there is no database at that path yet."""


class DatabaseVanished(FraudstreamError):
    """The SQLite database file was deleted or replaced while this process was using it.

    Permanent: not a ``DBAPIError`` nor an ``OSError``, so retry loops do not treat it as transient.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        super().__init__(
            f"database file {self.path} was deleted or replaced while in use; stopping (effects "
            "since it vanished were not kept — restore the file or start again)"
        )


# --------------------------------------------------------------------------- URL parsing


def _bad_url(url: str, problem: str, hint: str = URL_EXAMPLES) -> BadDatabaseURL:
    return BadDatabaseURL(f"bad database URL '{redact(url)}': {problem} ({hint})")


def parse_url(url: str) -> URL:
    """``url`` as a SQLAlchemy :class:`URL` for a supported database, or :class:`BadDatabaseURL`.

    ``postgres://`` (Heroku and libpq spell it so) is accepted as ``postgresql://``; PostgreSQL
    without a driver, or with ``psycopg2``, uses psycopg 3.
    """
    normalised = re.sub(r"^postgres(?=[+:])", "postgresql", url.strip())
    try:
        parsed = make_url(normalised)
    except NoSuchModuleError:
        scheme = normalised.split("://", 1)[0]
        raise _bad_url(url, f"unsupported database '{scheme}'",
                       f"fraudstream supports sqlite and postgresql; {URL_EXAMPLES}") from None
    except ValueError as exc:  # only int(port) raises ValueError in make_url
        port = re.search(r"invalid literal for int\(\) with base 10: (.*)$", str(exc))
        problem = (f"port {port[1]} is not a number" if port and port[1] != "''"
                   else "empty port after ':'" if port else first_line(exc))
        raise _bad_url(url, problem) from None
    except ArgumentError:
        problem = "not a URL SQLAlchemy can parse"
        if "://" not in normalised and re.match(r"^(/|\.|~|[\w.-]+\.(db|sqlite3?)$)", normalised):
            problem = "looks like a file path, not a URL"
        elif re.match(r"^sqlite:/?[^/]", normalised):
            problem = "sqlite URLs need three slashes (four for an absolute path)"
        raise _bad_url(url, problem) from None

    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise _bad_url(url, f"unsupported database '{parsed.drivername}'",
                       f"fraudstream supports sqlite and postgresql; {URL_EXAMPLES}")
    driver = parsed.get_driver_name()
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise _bad_url(url, f"unknown {backend} driver '{driver}'", URL_EXAMPLES) from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise _bad_url(url, f"port {parsed.port} is out of range 1-65535")
    if "@" in (parsed.host or "") or "@" in (parsed.username or ""):
        raise _bad_url(url, "more than one '@'",
                       "percent-encode '@' inside the password as %40")
    if backend == "postgresql" and driver in ("", "psycopg", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> str | None:
    """The database path of a SQLite URL as written (None for in-memory / URI-form databases)."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    if str(url.query.get("uri", "")).lower() in ("true", "1") or database.startswith("file:"):
        return None
    return database


def _relative_hint(url: str, database: str) -> str:
    """For ``sqlite:///rel/x.db``: say it is relative and how to write the absolute one."""
    if os.path.isabs(database):
        return ""
    if database.startswith("~"):
        return f" ({redact(url)}: '~' is not expanded; write the home directory out)"
    return (f" ({redact(url)} is a relative path; use "
            f"{redact(url).replace(':///', ':////', 1)} for an absolute one)")


def _check_sqlite_path(url: str, database: str, *, create: bool, make_dirs: bool) -> Path:
    """The absolute path of a SQLite database, after checking that it can be what we expect."""
    path = Path(os.path.abspath(database))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise DatabaseUnavailable(
            f"database path {path} goes through a file, not a directory"
            f"{_relative_hint(url, database)}") from None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise DatabaseUnavailable(
                f"database path {path} is a directory, not a SQLite database file"
                f"{_relative_hint(url, database)}")
        if not stat.S_ISREG(mode):
            raise DatabaseUnavailable(f"database path {path} is not a regular file")
        return path
    if not create:
        raise NoDatabase(
            f"no database at {path} (nothing has been scored or registered there yet; pass --db "
            f"or set FRAUDSTREAM_DB_URL){_relative_hint(url, database)}")
    parent = path.parent
    if not parent.is_dir():
        if make_dirs and not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)
        elif parent.exists():
            raise BadDatabaseURL(f"database directory {parent} is not a directory"
                                 f"{_relative_hint(url, database)}")
        else:
            hint = _relative_hint(url, database) or " (create it first, or fix the path)"
            raise BadDatabaseURL(f"database directory {parent} does not exist{hint}")
    return path


# --------------------------------------------------------------------------- engines


class _SqliteIdentity:
    """Which file (device, inode) an engine's SQLite database is, checked on every transaction.

    A SQLite connection keeps writing to its open file descriptor after the file is unlinked or
    replaced: every commit "succeeds" and is lost. ``os.stat`` per BEGIN/COMMIT costs ~1 µs.
    """

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.identity: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_dev, st.st_ino

    def record(self) -> None:
        if self.identity is None:
            self.identity = self._stat()

    def check(self) -> None:
        if self.identity is not None and self._stat() != self.identity:
            raise DatabaseVanished(self.path)


def _sqlite_engine(url: URL, path: Path, *, create: bool) -> Engine:
    url = url.set(database=str(path))  # absolute: immune to later chdir, matches what we stat
    engine = create_engine(url, connect_args={"timeout": 60})
    file = _SqliteIdentity(path)

    @event.listens_for(engine, "do_connect")
    def _sqlite_open(_dialect, _record, cargs, cparams):  # type: ignore[no-untyped-def]
        # Once the file is known (or when we must not create it) open it read-write only: a
        # missing file is then an error instead of a fresh, empty database at the same path.
        file.check()
        if file.identity is not None or not create:
            cargs[:] = [f"file:{quote(file.path)}?mode=rw"]
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        # Durable commits: the WAL is fsync-ed at every commit, so a committed batch survives a
        # power loss too (README, "What the scorer guarantees"). SQLite's default; stated here.
        dbapi_conn.execute("PRAGMA synchronous=FULL")
        # Random keys (transaction ids) dirty a page of the key index per row: a 16 MiB page
        # cache (SQLite's default is 2 MiB) keeps the index in memory, and checkpointing the WAL
        # into the database every 10,000 pages (~40 MiB) instead of 1,000 writes a page that
        # many commits changed once, not once per commit. Durability is unchanged (the WAL is
        # still fsync-ed at every commit). With 1,000,000 decisions stored, 2,000-row batches:
        # 1.35-1.43x as fast as SQLite's defaults (bench/bench_log_size.py, README).
        dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA busy_timeout=60000")
        file.record()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
        file.check()  # raised here it reaches the caller unwrapped (outside SQLAlchemy's try)
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "commit")
    def _sqlite_commit(_conn):  # type: ignore[no-untyped-def]
        file.check()  # a transaction written to a vanished file must not report success

    return engine


def _make_engine(parsed: URL, url: str, *, create: bool, make_dirs: bool) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        database = _sqlite_file(parsed)
        if database is None:
            if (parsed.database or "") in ("", ":memory:"):
                raise _bad_url(url, "an in-memory SQLite database is discarded when the command "
                                    "exits", "use sqlite:///path/to/file.db")
            return create_engine(parsed)  # URI form (uri=true): passed through unchecked
        path = _check_sqlite_path(url, database, create=create, make_dirs=make_dirs)
        engine = _load_driver(parsed, url, lambda: _sqlite_engine(parsed, path, create=create))
    else:
        engine = _load_driver(parsed, url, lambda: create_engine(parsed, pool_pre_ping=True))
    if engine.dialect.is_async:
        raise _bad_url(url, f"driver '{parsed.get_driver_name()}' is asynchronous",
                       f"use a synchronous driver; {URL_EXAMPLES}")
    return engine


def _load_driver(parsed: URL, url: str, make: Callable[[], Engine]) -> Engine:
    try:
        return make()
    except ImportError as exc:
        raise _bad_url(url, f"the {parsed.get_backend_name()} driver "
                            f"'{parsed.get_driver_name()}' is not installed (no module {exc.name})",
                       "use postgresql://… (psycopg 3) or sqlite:///…") from None


# --------------------------------------------------------------------------- errors


def _where(parsed: URL, message: str) -> str:
    found = re.search(r'server at "([^"]+)", port (\d+)', message)
    if found:
        return f"{found[1]}:{found[2]}"
    found = re.search(r'server on socket "([^"]+)"', message)
    if found:
        return found[1]
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _classify(exc: DBAPIError, parsed: URL, url: str) -> DatabaseUnavailable | None:
    """A permanent, one-line error for ``exc``, or None if it may be transient (retry)."""
    orig = exc.orig if exc.orig is not None else exc
    message = " ".join(str(orig).split())
    reason = first_line(orig)
    lower = message.lower()
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if "file is not a database" in lower:
            return DatabaseUnavailable(f"database file {path} is not a SQLite database "
                                       "(file is not a database)")
        if "database is locked" in lower:
            return None
        return DatabaseUnavailable(f"cannot open SQLite database {path}: {reason}")
    sqlstate = getattr(orig, "sqlstate", None)
    user = re.search(r'for user "([^"]*)"', message)
    who = user[1] if user else (parsed.username or os.environ.get("PGUSER") or "(default)")
    if sqlstate in ("28P01", "28000") or "authentication failed" in lower \
            or "no password supplied" in lower or re.search(r'role "[^"]*" does not exist', lower):
        detail = "no password supplied" if "no password supplied" in lower else reason
        detail = re.sub(r' for user "[^"]*"', "", detail.split("FATAL:")[-1]).strip()
        return DatabaseAuthFailed(
            f"authentication failed for user {who} at {_where(parsed, message)} ({detail}); "
            f"check the user and password in {redact(url)}")
    if sqlstate == "3D000" or re.search(r'database "[^"]*" does not exist', message):
        name = re.search(r'database "([^"]*)" does not exist', message)
        return DatabaseUnavailable(
            f"database {name[1] if name else parsed.database} does not exist at "
            f"{_where(parsed, message)} (create it, or fix the name in {redact(url)})")
    if "invalid" in lower and ("connection is bad" in lower or "uri query parameter" in lower
                               or "connection option" in lower):
        return _bad_url(url, reason.removeprefix("connection is bad: "))
    if sqlstate == "42501" or "permission denied" in lower:
        return DatabaseUnavailable(f"database {redact(url)}: {reason}")
    if not isinstance(exc, OperationalError):
        return DatabaseUnavailable(f"database {redact(url)} cannot be used: {reason}")
    return None


# --------------------------------------------------------------------------- public API


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (idempotent)."""
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, "head")
        except CommandError as exc:
            url = engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailable(
                f"cannot migrate database {url}: {first_line(exc)} (was it created by a newer "
                "version of fraudstream?)") from exc


def empty_postgres(url: str) -> None:
    """Drop and recreate the ``public`` schema of a PostgreSQL database: for the databases that
    tests and benchmarks reserve for themselves, never for a store in use."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def connect(url: str | None = None, *, create: bool = True, attempts: int = 3,
            wait_s: float = 1.0) -> Engine:
    """An engine for ``url`` (flag > ``$FRAUDSTREAM_DB_URL`` > default) migrated to head.

    ``create=False`` (read-only commands): a SQLite database that does not exist yet raises
    :class:`NoDatabase` and nothing is created -- neither the file nor ``$FRAUDSTREAM_HOME``.
    An existing database is still migrated. With ``create=True`` a missing SQLite file is
    created, but its directory only for the default database under ``$FRAUDSTREAM_HOME``; an
    explicit URL whose directory does not exist is a :class:`BadDatabaseURL`.

    Every failure is a :class:`DatabaseUnavailable` (or subclass) whose one-line message names
    the problem with the password redacted. Only errors that may be transient (a PostgreSQL
    server not accepting connections yet) are retried, ``attempts`` times.
    """
    explicit = explicit_db_url(url)
    url = explicit or default_db_url(create_home=create)
    parsed = parse_url(url)
    engine = _make_engine(parsed, url, create=create, make_dirs=explicit is None)
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                migrate(engine)
                return engine
            except DBAPIError as exc:
                problem = _classify(exc, engine.url, url)
                if problem is not None:
                    raise problem from exc
                if attempt == attempts:
                    raise DatabaseUnavailable(
                        f"database {redact(url)} is unreachable: {first_line(exc.orig or exc)}"
                    ) from exc
                time.sleep(wait_s * attempt)
    except BaseException:
        engine.dispose()
        raise
    raise AssertionError("unreachable")
