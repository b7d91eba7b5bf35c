"""`alerts list|show` and `models show|promote` for a person, on real SQLite and PostgreSQL.

Rows are seeded straight into the alerts, decisions and labels tables (as the scorer and the
label sink would write them) and the commands run through ``fraudstream_cli.main``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import fraudstream_cli
from schemas.events import DATASET_EPOCH
from store import registry
from store.db import connect
from store.queries import ALERT_COLUMNS, AlertFilter, list_alerts, transaction_story
from store.tables import alerts, decisions, labels

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = 3600.0


def register_model(engine, tmp_path: Path, home: Path, name: str):
    staging = tmp_path / name
    staging.mkdir()
    (staging / "model.keras").write_text(name)
    metrics = {"test": {
        "threshold": {"auc": 0.97, "prc": 0.81, "precision": 0.9, "recall": 0.8, "tp": 80.0,
                      "fp": 9.0, "fn": 20.0},
        "0.5": {"auc": 0.97, "prc": 0.81, "precision": 0.2, "recall": 0.9, "tp": 90.0,
                "fp": 360.0, "fn": 10.0}}}
    return registry.register(engine, staging, strategy="weighted", threshold=0.7,
                             threshold_policy="max-f1", metrics=metrics,
                             data_sha256="ab" * 32, home=home)


def alert_row(tid: str, version: int, score: float, hours: float, created_min: float = 0.0):
    return {"transaction_id": tid, "model_version": version, "score": score, "threshold": 0.7,
            "amount": 12.5, "time_s": hours * HOUR, "source_topic": "transactions",
            "source_partition": 1, "source_offset": int(hours * 10),
            "created_at": NOW + timedelta(minutes=created_min)}


def decision_row(tid: str, version: int, score: float, hours: float):
    return {"transaction_id": tid, "model_version": version, "score": score, "threshold": 0.7,
            "flagged": score >= 0.7, "amount": 12.5,
            "event_time": DATASET_EPOCH + timedelta(hours=hours), "source_topic": "transactions",
            "source_partition": 1, "source_offset": int(hours * 10), "scored_at": NOW}


def label_row(tid: str, fraud: bool, hours: float, source: str = "chargeback",
              reason: str | None = None):
    return {"label_id": f"{tid}@{hours}", "transaction_id": tid, "is_fraud": int(fraud),
            "source": source, "observed_at": DATASET_EPOCH + timedelta(hours=hours),
            "reason": reason, "received_at": NOW, "source_topic": None,
            "source_partition": None, "source_offset": None}


#: (transaction, version, score, event hour): a fraud, a corrected label, an unlabelled one,
#: a second version's alert on the same transaction.
ALERTS = [("t-fraud", 1, 0.99, 30.0), ("t-corrected", 1, 0.80, 10.0), ("t-open", 1, 0.75, 40.0),
          ("t-fraud", 2, 0.95, 30.0), ("t-late", 2, 0.72, 45.0)]


@pytest.fixture
def seeded(db_url: str, tmp_path: Path, home: Path) -> str:
    engine = connect(db_url)
    register_model(engine, tmp_path, home, "one")
    register_model(engine, tmp_path, home, "two")
    with engine.begin() as conn:
        conn.execute(alerts.insert(), [alert_row(t, v, s, h, i) for i, (t, v, s, h)
                                       in enumerate(ALERTS)])
        conn.execute(decisions.insert(), [decision_row(t, v, s, h) for t, v, s, h in ALERTS]
                     + [decision_row("t-quiet", 1, 0.1, 20.0)])
        conn.execute(labels.insert(), [
            label_row("t-fraud", True, 50.0),
            label_row("t-corrected", True, 12.0, source="analyst"),
            label_row("t-corrected", False, 20.0, source="chargeback", reason="customer ok"),
            label_row("t-quiet", False, 25.0, source="analyst")])
    engine.dispose()
    return db_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = fraudstream_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ids(rows: list[dict]) -> list[tuple[str, int]]:
    return [(r["transaction_id"], r["model_version"]) for r in rows]


def test_orders(seeded: str) -> None:
    engine = connect(seeded, create=False)
    assert ids(list_alerts(engine, order="score")) == [
        ("t-fraud", 1), ("t-fraud", 2), ("t-corrected", 1), ("t-open", 1), ("t-late", 2)]
    assert ids(list_alerts(engine, order="newest")) == [
        ("t-late", 2), ("t-open", 1), ("t-fraud", 2), ("t-fraud", 1), ("t-corrected", 1)]
    assert ids(list_alerts(engine, order="newest", limit=2)) == [("t-late", 2), ("t-open", 1)]


@pytest.mark.parametrize(("where", "expected"), [
    (AlertFilter(min_score=0.9), {("t-fraud", 1), ("t-fraud", 2)}),
    (AlertFilter(max_score=0.76), {("t-open", 1), ("t-late", 2)}),
    (AlertFilter(min_score=0.76, max_score=0.96), {("t-corrected", 1), ("t-fraud", 2)}),
    (AlertFilter(since=DATASET_EPOCH + timedelta(hours=30)),
     {("t-fraud", 1), ("t-fraud", 2), ("t-open", 1), ("t-late", 2)}),
    (AlertFilter(until=DATASET_EPOCH + timedelta(hours=30)), {("t-corrected", 1)}),
    (AlertFilter(model_version=2), {("t-fraud", 2), ("t-late", 2)}),
    (AlertFilter(label="fraud"), {("t-fraud", 1), ("t-fraud", 2)}),
    (AlertFilter(label="genuine"), {("t-corrected", 1)}),  # the later label wins
    (AlertFilter(label="none"), {("t-open", 1), ("t-late", 2)}),
    (AlertFilter(label="none", model_version=1), {("t-open", 1)}),
])
def test_filters(seeded: str, where: AlertFilter, expected: set) -> None:
    rows = list_alerts(connect(seeded, create=False), limit=None, where=where)
    assert set(ids(rows)) == expected


def test_list_table_and_cli_filters(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "alerts", "list", "--db", seeded, "--order", "newest",
                         "--since", "2013-09-02T06:00", "--label", "none")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["transaction", "event", "time"]
    assert [line.split()[0] for line in lines[1:]] == ["t-late", "t-open"]
    assert "2013-09-02 21:00:00" in out and "v2" in out  # t-late: 45 h after the epoch
    code, out, _ = run(capsys, "alerts", "list", "--db", seeded, "--label", "genuine")
    assert "t-corrected" in out and "genuine (chargeback)" in out
    code, out, _ = run(capsys, "alerts", "list", "--db", seeded, "--min-score", "0.999")
    assert (code, out) == (0, "no alerts match these filters\n")


def test_csv_and_json(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "alerts", "list", "--db", seeded, "--format", "csv",
                       "--limit", "0")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0]) == ALERT_COLUMNS
    assert len(rows) == len(ALERTS)
    assert rows[0]["transaction_id"] == "t-fraud" and rows[0]["label"] == "fraud"
    assert rows[0]["event_time"].startswith("2013-09-02T06:00:00")
    assert {r["label"] for r in rows} == {"fraud", "genuine", ""}
    _, as_json, _ = run(capsys, "alerts", "list", "--db", seeded, "--json")
    _, as_format, _ = run(capsys, "alerts", "list", "--db", seeded, "--format", "json")
    assert json.loads(as_json) == json.loads(as_format)
    assert len(json.loads(as_json)) == len(ALERTS)


def test_show_everything_known(seeded: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "alerts", "show", "t-corrected", "--db", seeded)
    assert code == 0, err
    assert "truth = genuine (chargeback)" in out
    assert "alerts (1):" in out and "v1: score 0.8000" in out
    assert "decisions (1):" in out and "flagged" in out
    label_lines = [line for line in out.splitlines() if "observed" in line]
    assert len(label_lines) == 2
    assert label_lines[0].split()[0] == "fraud" and "current" not in label_lines[0]
    assert label_lines[1].split()[0] == "genuine" and label_lines[1].endswith("<- current")
    assert "customer ok" in label_lines[1]

    code, out, _ = run(capsys, "alerts", "show", "t-fraud", "--db", seeded)
    assert "alerts (2):" in out and "v1: score 0.9900" in out and "v2: score 0.9500" in out
    code, out, _ = run(capsys, "alerts", "show", "t-quiet", "--db", seeded)  # never alerted
    assert "alerts: none" in out and "passed" in out and "truth = genuine (analyst)" in out

    code, out, _ = run(capsys, "alerts", "show", "t-corrected", "--db", seeded, "--json")
    data = json.loads(out)
    assert [lab["current"] for lab in data["labels"]] == [False, True]
    assert [a["model_version"] for a in data["alerts"]] == [1]


def test_show_agrees_with_the_truth_rule(seeded: str) -> None:
    """The label `alerts show` marks current is the one store.truth picks (list_alerts)."""
    engine = connect(seeded, create=False)
    for row in list_alerts(engine, limit=None):
        current = transaction_story(engine, row["transaction_id"]).current_label
        assert (current["label"] if current else None) == row["label"]


@pytest.mark.parametrize(("argv", "words"), [
    (["alerts", "show", "nope"], ["no alert, decision or label", "'nope'"]),
    (["alerts", "list", "--min-score", "1.5"], ["--min-score must be between 0 and 1"]),
    (["alerts", "list", "--max-score", "-0.1"], ["--max-score must be between 0 and 1"]),
    (["alerts", "list", "--min-score", "0.9", "--max-score", "0.1"], ["above --max-score"]),
    (["alerts", "list", "--since", "yesterday"], ["--since: not an ISO date", "'yesterday'"]),
    (["alerts", "list", "--until", "2013-13-01"], ["--until: not an ISO date"]),
    (["alerts", "list", "--since", "2013-09-03", "--until", "2013-09-02"], ["not before"]),
    (["alerts", "list", "--limit", "-1"], ["--limit must be >= 0"]),
    (["models", "show", "9"], ["model version 9 is not registered"]),
    (["models", "promote", "9"], ["model version 9 is not registered"]),
])
def test_bad_values_are_one_line_exit_2(seeded: str, capsys: pytest.CaptureFixture[str],
                                        argv: list[str], words: list[str]) -> None:
    code, out, err = run(capsys, *argv, "--db", seeded)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"fraudstream {argv[0]}: error: ")
    for word in words:
        assert word in err


@pytest.mark.parametrize("argv", [["alerts", "list", "--label", "maybe"],
                                  ["alerts", "list", "--order", "oldest"],
                                  ["alerts", "list", "--format", "xml"]])
def test_bad_choices_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        fraudstream_cli.main(argv)
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["alerts", "list"], ["alerts", "show", "t-1"],
                                  ["models", "show"]])
def test_read_only_commands_never_create_a_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    path = tmp_path / "absent.db"
    code, _, err = run(capsys, *argv, "--db", f"sqlite:///{path}")
    assert code == 2 and "no database at" in err and err.count("\n") == 1
    assert not path.exists()


def test_models_show_and_promote_for_a_person(seeded: str, home: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "show", "--db", seeded)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("model v1  production  ")
    assert "threshold 0.7000  (policy max-f1" in out
    assert "test @ 0.7000: auc=0.9700 prc=0.8100 precision=0.9000 recall=0.8000 tp=80 fp=9 " \
           "fn=20" in out
    assert "test @ 0.5: precision=0.2000" in out and "auc" not in lines[3]
    assert f"report: none at {home / 'reports' / 'v1' / 'index.html'}" in out
    assert len(lines) <= 8
    report = home / "reports" / "v1" / "index.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    _, out, _ = run(capsys, "models", "show", "1", "--db", seeded)
    assert f"report: {report}" in out

    _, out, _ = run(capsys, "models", "show", "--db", seeded, "--json")
    data = json.loads(out)
    assert data["metrics"]["test"]["threshold"]["auc"] == 0.97
    assert data["report"] == str(report) and len(data["manifest_sha256"]) == 64

    assert run(capsys, "models", "promote", "2", "--db", seeded)[1] == \
        "model 2 is now production (was 1)\n"
    assert run(capsys, "models", "promote", "2", "--db", seeded)[1] == \
        "model 2 is already production\n"
    _, out, _ = run(capsys, "models", "promote", "1", "--db", seeded, "--json")
    data = json.loads(out)
    assert (data["version"], data["stage"], data["previous_production"]) == (1, "production", 2)


def test_a_reader_that_goes_away_ends_the_output_quietly(seeded: str) -> None:
    """`alerts list | head -3` and `counts --json | head -c 600`: when the pipe's reader exits,
    the command stops as Unix tools do (status 141, as if killed by SIGPIPE), no traceback."""
    engine = connect(seeded, create=False)
    with engine.begin() as conn:  # a table far longer than a pipe's buffer
        conn.execute(alerts.insert(), [alert_row(f"t-many-{i:05d}", 1, 0.5, 1.0, i)
                                       for i in range(3000)])
    engine.dispose()
    env = {**os.environ, "FRAUDSTREAM_DB_URL": seeded}
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         f"'{sys.executable}' -m fraudstream_cli alerts list --limit 0 | head -3"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert len(head.stdout.splitlines()) == 3
    assert head.stderr == "" and head.returncode == 141
    # The reader already gone before anything was written (head -c 600 finished first).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        counts = subprocess.run([sys.executable, "-m", "fraudstream_cli", "counts", "--json"],
                                cwd=root, env=env, stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    finally:
        os.close(write_end)
    assert counts.stderr == "" and counts.returncode == 141
