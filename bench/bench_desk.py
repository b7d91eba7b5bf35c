"""Latency of the ops desk's queue with a large alert table: the queue page (HTML, a logged-in
session) and the API list (JSON, a bearer token), p50/p95 per scenario.

    .venv/bin/python bench/bench_desk.py [--rows 1000000] [--runs 40]
        [--pg-url URL | --db URL] [--explain]

The database is migrated first (so the queue's indexes are migration 0005's), then ``alerts`` is
seeded with psycopg ``COPY`` (SQLite: ``executemany``): ``rows`` alerts of one model version
over 30 days of event time, 70 % closed, 5 % claimed by one of 20 analysts, 25 % open, each
with a five-feature explanation; then ANALYZE. Requests go through the whole ASGI app
(FastAPI's TestClient: routing, auth, query, JSON or Jinja2 rendering), not over a socket.
Every 4th alert's transaction has a label (each row shows its current label). Scenarios: the
default queue (open, newest first), highest score first, page 20 (following cursors), a score +
amount + time filter, one analyst's claimed alerts, every status, the label filters.
Aim: p95 < 150 ms on PostgreSQL. PostgreSQL from ``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL``
(or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (a PostgreSQL driver before anything else heavy)
from common import PG_ENV, fresh_db, percentile, redacted

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = (
    "transaction_id",
    "model_version",
    "score",
    "threshold",
    "amount",
    "time_s",
    "source_topic",
    "source_partition",
    "source_offset",
    "created_at",
    "explanation",
    "status",
    "assignee",
    "disposition",
    "revision",
    "updated_at",
)
SPAN_S = 30 * 86400
ANALYSTS = [f"analyst{i:02d}" for i in range(20)]
SCENARIOS: dict[str, dict[str, str]] = {
    "open, newest": {},
    "open, highest score": {"order": "score"},
    "score+amount+time filter": {
        "min_score": "0.95",
        "min_amount": "50",
        "max_amount": "200",
        "since": "2013-09-10",
        "until": "2013-09-20",
    },
    "one analyst's claimed": {"status": "claimed", "assignee": "analyst07"},
    "all statuses, newest": {"status": "all"},
    "label fraud, all statuses": {"status": "all", "label": "fraud"},
    "open, no label yet": {"label": "none"},
}
LABELLED_EVERY = 4  # every 4th alert's transaction has a label (each queue row shows it)


def alert_rows(n: int) -> Any:
    rng = random.Random(5)
    now = datetime.now(UTC)
    features = [f"V{i}" for i in range(1, 29)]
    for i in range(n):
        score = 0.5 + 0.5 * rng.random() ** 2
        pick = rng.random()
        status = "closed" if pick < 0.7 else "claimed" if pick < 0.75 else "open"
        assignee = rng.choice(ANALYSTS) if status != "open" else None
        disposition = (
            rng.choice(("confirmed_fraud", "false_positive", "false_positive"))
            if status == "closed"
            else None
        )
        explanation = [
            {"feature": f, "contribution": round(rng.gauss(0, 1), 4)}
            for f in rng.sample(features, 5)
        ]
        yield (
            f"seed-{i:09d}",
            1,
            score,
            0.5,
            round(rng.random() * 400, 2),
            i * SPAN_S / n,
            "transactions",
            i % 3,
            i // 3,
            now - timedelta(seconds=n - i),
            json.dumps(explanation),
            status,
            assignee,
            disposition,
            1 if assignee else 0,
            now - timedelta(seconds=rng.random() * 14 * 86400) if assignee else None,
        )


def label_rows(n: int) -> Any:
    """A label for every :data:`LABELLED_EVERY`-th alert: half chargebacks saying fraud, half
    analysts saying genuine."""
    observed = datetime(2013, 10, 1, tzinfo=UTC)
    for i in range(0, n, LABELLED_EVERY):
        fraud = (i // LABELLED_EVERY) % 2 == 0
        yield (f"bench:{i}", f"seed-{i:09d}", int(fraud), "chargeback" if fraud else "analyst",
               observed, observed)


LABEL_COLUMNS = ("label_id", "transaction_id", "is_fraud", "source", "observed_at",
                 "received_at")


def add_model(engine: Any) -> None:
    """Model version 1 (production), the one the seeded alerts name."""
    from sqlalchemy import insert

    from store.tables import model_versions

    with engine.begin() as conn:
        conn.execute(
            insert(model_versions).values(
                version=1,
                created_at=datetime.now(UTC),
                strategy="weighted",
                threshold=0.5,
                threshold_policy="max-f1",
                metrics={},
                artifact_dir="-",
                manifest_sha256="0" * 64,
                data_sha256="0" * 64,
                stage="production",
            )
        )


def seed(url: str, rows: int) -> None:
    from sqlalchemy import insert

    from store.db import connect
    from store.tables import alerts, labels

    engine = connect(url)
    add_model(engine)
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with (
                raw.driver_connection.cursor() as cur,
                cur.copy(f"COPY alerts ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in alert_rows(rows):
                    copy.write_row(row)
            with (
                raw.driver_connection.cursor() as cur,
                cur.copy(f"COPY labels ({', '.join(LABEL_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in label_rows(rows):
                    copy.write_row(row)
            raw.driver_connection.commit()
            raw.driver_connection.execute("ANALYZE alerts")
            raw.driver_connection.execute("ANALYZE labels")
            raw.driver_connection.commit()
        finally:
            raw.close()
    else:
        batch: list[dict[str, Any]] = []
        with engine.begin() as conn:
            for row in alert_rows(rows):
                record = dict(zip(COLUMNS, row, strict=True))
                record["explanation"] = json.loads(record["explanation"])
                batch.append(record)
                if len(batch) == 10_000:
                    conn.execute(insert(alerts), batch)
                    batch.clear()
            if batch:
                conn.execute(insert(alerts), batch)
            conn.execute(insert(labels), [dict(zip(LABEL_COLUMNS, row, strict=True))
                                          for row in label_rows(rows)])
            conn.exec_driver_sql("ANALYZE")
    print(f"seeded {rows:,} alerts ({rows // LABELLED_EVERY:,} labelled) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()


#: The header of the latency tables (one row per scenario: page and API, p50 and p95).
HEADER = f"{'scenario':<28} {'page p50':>9} {'p95':>7} {'API p50':>9} {'p95':>7}  (ms)"


def desk_clients(engine: Any) -> tuple[Any, Any]:
    """The desk over ``engine`` and two clients of it: a browser logged in as the analyst
    ``bench`` and the API with that analyst's bearer token."""
    from fastapi.testclient import TestClient

    from desk import auth
    from desk.app import create_app
    from tests.desk_fixtures import login

    password = auth.add_user(engine, "bench", "analyst")
    _, token = auth.add_token(engine, "bench")
    app = create_app(engine, secret="bench-secret-0123456789")
    browser = TestClient(app)
    login(browser, "bench", password)
    return browser, TestClient(app, headers={"Authorization": f"Bearer {token}"})


def timed(get: Any, path: str, params: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        response = get(path, params=params)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, params, response.text[:300])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per scenario")
    parser.add_argument("--db", help="a database URL (postgresql is RESET)")
    parser.add_argument("--pg-url", default=None, help=f"PostgreSQL URL (default ${PG_ENV})")
    parser.add_argument(
        "--explain", action="store_true", help="print PostgreSQL's plan of the default queue query"
    )
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from store.db import connect

    with tempfile.TemporaryDirectory(prefix="bench-desk-") as tmp:
        url = fresh_db(args.db or args.pg_url or os.environ.get(PG_ENV), Path(tmp))
        print(f"database: {redacted(url)}", flush=True)
        seed(url, args.rows)
        engine = connect(url)
        browser, api = desk_clients(engine)
        worst = 0.0
        print(HEADER)
        for name, params in {**SCENARIOS, "page 20 (cursor)": {}}.items():
            if name == "page 20 (cursor)":
                cursor = None
                for _ in range(19):
                    page = api.get("/api/alerts", params={"cursor": cursor} if cursor else {})
                    cursor = page.json()["next_cursor"]
                params = {"cursor": cursor}
            timed(browser.get, "/queue", params, 3)  # warm-up
            html = timed(browser.get, "/queue", params, args.runs)
            data = timed(api.get, "/api/alerts", params, args.runs)
            p95s = (percentile(html, 95), percentile(data, 95))
            worst = max(worst, *p95s)
            print(
                f"{name:<28} {percentile(html, 50):9.1f} {p95s[0]:7.1f} "
                f"{percentile(data, 50):9.1f} {p95s[1]:7.1f}",
                flush=True,
            )
        print(f"worst p95: {worst:.1f} ms (aim < 150 ms) with {args.rows:,} alerts")
        board = timed(api.get, "/api/dashboard", {}, 5)
        print(f"dashboard (every figure, full scans; no aim): p50 {percentile(board, 50):.0f} ms")
        if args.explain and engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                plan = conn.exec_driver_sql(
                    "EXPLAIN ANALYZE SELECT * FROM alerts WHERE status = 'open' ORDER BY "
                    "time_s DESC, transaction_id DESC, model_version DESC LIMIT 51"
                ).all()
            print("\n".join(r[0] for r in plan))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
