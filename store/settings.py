"""Where things live: flags > environment > defaults.

``FRAUDSTREAM_HOME`` (default ``./.fraudstream``) holds models and the default SQLite database;
``FRAUDSTREAM_DB_URL`` overrides the database (default ``sqlite:///$FRAUDSTREAM_HOME/fraudstream.db``).
Credentials for PostgreSQL come only from that URL in the environment, never from files.
``FRAUDSTREAM_MATURE_AFTER`` (default ``48h``) is the deployment's label window: every matured
figure (``counts``, ``models compare``, ``retrain``, the desk) resolves it through :func:`maturity`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemas.durations import parse_duration

DB_URL_ENV = "FRAUDSTREAM_DB_URL"
MATURE_AFTER_ENV = "FRAUDSTREAM_MATURE_AFTER"
DEFAULT_MATURE_AFTER = "48h"


@dataclass(frozen=True)
class Maturity:
    """The label window: an unlabelled decision older than ``window`` (against the stream's
    clock) counts as genuine. ``text`` is as the user wrote it; ``source`` says where it came
    from (the flag, the environment variable, or the default)."""

    window: timedelta
    text: str
    source: str

    def describe(self) -> str:
        """``matured after 6h (from $FRAUDSTREAM_MATURE_AFTER)``: printed beside matured figures."""
        where = (f"the default; set ${MATURE_AFTER_ENV} or --mature-after to change it"
                 if self.source == "default" else f"from {self.source}")
        return f"matured after {self.text} ({where})"

    def to_dict(self) -> dict[str, object]:
        return {"mature_after": self.text, "mature_after_s": self.window.total_seconds(),
                "mature_after_source": self.source}


def maturity(flag: str | None = None, *, flag_name: str = "--mature-after") -> Maturity:
    """The deployment's label window: ``flag`` > ``$FRAUDSTREAM_MATURE_AFTER`` > 48h.
    FraudstreamError naming where a malformed duration came from."""
    env = os.environ.get(MATURE_AFTER_ENV, "").strip()
    if flag is not None and flag.strip():
        text, source = flag.strip(), flag_name
    elif env:
        text, source = env, f"${MATURE_AFTER_ENV}"
    else:
        text, source = DEFAULT_MATURE_AFTER, "default"
    return Maturity(timedelta(seconds=parse_duration(text, source)), text, source)


def add_mature_after(parser: Any) -> None:
    """The ``--mature-after`` flag (on an argparse parser or group) of every command that shows
    or uses matured figures; resolve its value with :func:`maturity`."""
    parser.add_argument(
        "--mature-after", default=None, metavar="DURATION",
        help=f"label window: unlabelled decisions older than this (against the stream's clock, "
             f"the latest event decided) count as genuine, younger ones are pending (e.g. 6h, "
             f"48h, 30d; default: ${MATURE_AFTER_ENV}, else {DEFAULT_MATURE_AFTER})")


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
