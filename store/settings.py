"""Where things live: flags > environment > defaults.

``FRAUDSTREAM_HOME`` (default ``./.fraudstream``) holds models and the default SQLite database;
``FRAUDSTREAM_DB_URL`` overrides the database (default ``sqlite:///$FRAUDSTREAM_HOME/fraudstream.db``).
Credentials for PostgreSQL come only from that URL in the environment, never from files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DB_URL_ENV = "FRAUDSTREAM_DB_URL"


def home(flag: str | Path | None = None, *, create: bool = True) -> Path:
    """The fraudstream home directory (absolute), created if missing unless ``create=False``.

    Read-only paths pass ``create=False`` so that merely looking never leaves a directory behind.
    """
    path = Path(flag or os.environ.get("FRAUDSTREAM_HOME") or ".fraudstream").resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def explicit_db_url(flag: str | None = None) -> str | None:
    """The URL the user chose (``--db``, else ``$FRAUDSTREAM_DB_URL``); None means the default.

    Surrounding whitespace is dropped (a pasted URL often carries a trailing newline or space).
    """
    for value in (flag, os.environ.get(DB_URL_ENV)):
        if value is not None and value.strip():
            return value.strip()
    return None


def default_db_url(*, create_home: bool = True) -> str:
    """``sqlite:///$FRAUDSTREAM_HOME/fraudstream.db`` (an absolute path: four slashes)."""
    return f"sqlite:///{home(create=create_home) / 'fraudstream.db'}"


def db_url(flag: str | None = None, *, create_home: bool = True) -> str:
    """The SQLAlchemy database URL: flag > ``$FRAUDSTREAM_DB_URL`` > the default SQLite file."""
    return explicit_db_url(flag) or default_db_url(create_home=create_home)


# ``scheme://user:password@`` -- greedy up to the last '@' so that an unencoded '@' inside the
# password cannot leave part of it visible.
_USERINFO = re.compile(r"^(?P<head>[^:/?#]+://[^:/?#@]*):(?P<password>.*)@(?P<tail>[^@]*)$")


def redact(url: str) -> str:
    """A URL safe to print: the password, if any, replaced by ``***``.

    Works on URLs SQLAlchemy cannot parse too (those are exactly the ones error messages quote).
    """
    from sqlalchemy.engine import make_url

    match = _USERINFO.match(url)
    fallback = f"{match['head']}:***@{match['tail']}" if match else url
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any unparseable URL: fall back to the pattern
        return fallback
    if "@" in (parsed.host or "") or "@" in (parsed.username or ""):
        return fallback  # an unencoded '@' in the password: SQLAlchemy split it in the wrong place
    if parsed.password is None:
        return url  # nothing to hide: show it exactly as the user wrote it
    return parsed.render_as_string(hide_password=True)
