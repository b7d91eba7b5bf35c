"""Log output for every command: human lines (default) or one JSON object per line.

``--log-format json`` (or ``FRAUDSTREAM_LOG_FORMAT=json``, as in compose) makes each record a
single-line JSON object with ``ts`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
``message``, any ``extra={...}`` fields the caller attached, and ``exc`` (the formatted
traceback) when there is one — what a log shipper (Loki, Elasticsearch, Cloud Logging) indexes
without a parsing rule.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def default_format() -> str:
    """``$FRAUDSTREAM_LOG_FORMAT`` if it names a format, else ``text``."""
    value = os.environ.get("FRAUDSTREAM_LOG_FORMAT", "text").strip().lower()
    return value if value in FORMATS else "text"


def configure(*, verbose: bool, fmt: str) -> None:
    """Route the root logger to stderr in ``fmt`` (``text`` | ``json``); quiet Kafka and
    Alembic unless ``verbose``."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.DEBUG if verbose else logging.WARNING)
