"""--log-format json: one parseable JSON object per line, with the caller's extra fields."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metrics import logs

ROOT = Path(__file__).resolve().parents[1]


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("fraudstream.x", logging.WARNING, __file__, 1,
                               "dead-lettering %s", ("t/0/5",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_keeps_message_level_and_extras_on_one_line():
    line = logs.JsonFormatter().format(_record(topic="transactions", offset=5,
                                               reason="bad\nline"))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["message"] == "dead-lettering t/0/5"
    assert doc["level"] == "WARNING" and doc["logger"] == "fraudstream.x"
    assert doc["topic"] == "transactions" and doc["offset"] == 5 and doc["reason"] == "bad\nline"
    assert doc["ts"].endswith("+00:00")
    assert "args" not in doc and "msg" not in doc  # standard attributes stay out


def test_json_formatter_includes_the_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    doc = json.loads(logs.JsonFormatter().format(record))
    assert "RuntimeError: boom" in doc["exc"]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="not one of text, json"):
        logs.configure(verbose=False, fmt="xml")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_error_is_a_json_line(tmp_path, how):
    env = {**os.environ, "FRAUDSTREAM_HOME": str(tmp_path)}
    args = [sys.executable, "-m", "fraudstream_cli"]
    if how == "flag":
        args += ["--log-format", "json"]
    else:
        env["FRAUDSTREAM_LOG_FORMAT"] = "json"
    missing = tmp_path / "nowhere" / "x.db"
    proc = subprocess.run([*args, "models", "list", "--db", f"sqlite:///{missing}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    errors = [d for d in lines if d["level"] == "ERROR"]
    assert len(errors) == 1 and str(missing) in errors[0]["message"]
    assert errors[0]["error"] == "NoDatabase" and errors[0]["exit_code"] == 2
