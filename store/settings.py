"""Where things live: flags > environment > defaults.

``FRAUDSTREAM_HOME`` (default ``./.fraudstream``) holds models and the default SQLite database;
``FRAUDSTREAM_DB_URL`` overrides the database (default ``sqlite:///$FRAUDSTREAM_HOME/fraudstream.db``).
Credentials for PostgreSQL come only from that URL in the environment, never from files.
"""

from __future__ import annotations

import os
from pathlib import Path


def home(flag: str | Path | None = None) -> Path:
    """The fraudstream home directory (created if missing)."""
    path = Path(flag or os.environ.get("FRAUDSTREAM_HOME") or ".fraudstream").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url(flag: str | None = None) -> str:
    """The SQLAlchemy database URL."""
    return flag or os.environ.get("FRAUDSTREAM_DB_URL") or f"sqlite:///{home() / 'fraudstream.db'}"


def redact(url: str) -> str:
    """A URL safe to print: the password, if any, replaced by ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
