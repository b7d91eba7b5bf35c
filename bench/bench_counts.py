"""Latency of the matured confusion counts, ``store.counts.matured_counts``, over a large decision
log: ``matured_counts(engine, timedelta(hours=48), by_day=True)`` and without ``by_day``, p50/p95
over repeated runs, on PostgreSQL and SQLite.

    .venv/bin/python bench/bench_counts.py [--rows 1000000] [--labels 2000] [--runs 10]
        [--backends sqlite,postgresql] [--pg-url URL | --db URL] [--explain]

The ``decisions`` table is seeded directly (PostgreSQL: psycopg ``COPY``; SQLite: one
``executemany``) with ``rows`` decisions of one model version spread over 30 days of event
time, ~0.2 % flagged; ``labels`` gets ~``labels`` rows: fraud and genuine truths for 80 % of
that many transactions, corrections (a later label flipping the first) for the rest, plus a few
orphans (labels of transactions never decided). Tables are ANALYZEd after seeding. Each timing is
one full call (the stream-clock queries, the counts query and the orphans query); the slowest
statement's share is reported too. ``--explain`` prints EXPLAIN ANALYZE of each statement
(PostgreSQL) / EXPLAIN QUERY PLAN (SQLite). Aim: p50 < 1 s on PostgreSQL. PostgreSQL from
``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (a PostgreSQL driver before anything else heavy)
from common import add_db_arguments, backends, fresh_db, percentile, redacted

EPOCH = datetime(2013, 9, 1, tzinfo=UTC)
SPAN_S = 30 * 86400
DECISION_COLUMNS = ("transaction_id", "model_version", "score", "threshold", "flagged", "amount",
                    "event_time", "source_topic", "source_partition", "source_offset",
                    "scored_at")
LABEL_COLUMNS = ("label_id", "transaction_id", "is_fraud", "source", "observed_at", "reason",
                 "received_at")


def tid(i: int) -> str:
    return f"seed-{i:09d}"


def decision_rows(n: int) -> Any:
    rng = random.Random(11)
    now = datetime.now(UTC)
    step = SPAN_S / n
    for i in range(n):
        score = rng.random() ** 8
        yield (tid(i), 1, score, 0.9, score >= 0.9, round(rng.random() * 300, 2),
               EPOCH + timedelta(seconds=i * step), "transactions", i % 3, i // 3, now)


def label_rows(n_decisions: int, n_labels: int) -> list[tuple[Any, ...]]:
    rng = random.Random(12)
    now = datetime.now(UTC)
    step = SPAN_S / n_decisions
    first = int(n_labels * 0.8)
    chosen = rng.sample(range(n_decisions), first)
    rows = []
    for j, i in enumerate(chosen):
        when = EPOCH + timedelta(seconds=i * step + 86400)
        rows.append((f"seed:{j}", tid(i), int(rng.random() < 0.3), "chargeback", when, None, now))
    for j, i in enumerate(chosen[: n_labels - first - 20]):  # corrections: later, flipped
        first_label = rows[j]
        rows.append((f"seed-fix:{j}", tid(i), 1 - first_label[2], "analyst",
                     first_label[4] + timedelta(hours=6), "analyst correction", now))
    for j in range(20):  # orphans: labels of transactions never decided
        rows.append((f"seed-orphan:{j}", f"orphan-{j}", 1, "other", EPOCH, None, now))
    return rows


def seed_model(engine: Any) -> None:
    from store.tables import model_versions

    with engine.begin() as conn:
        conn.execute(model_versions.insert().values(
            version=1, created_at=datetime.now(UTC), strategy="weighted", threshold=0.9,
            threshold_policy="bench", metrics={}, artifact_dir="models/1", manifest_sha256="0",
            data_sha256="0", stage="production"))


def seed_postgres(engine: Any, n: int, labels: list[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            with cur.copy(f"COPY decisions ({', '.join(DECISION_COLUMNS)}) FROM STDIN") as copy:
                buf = io.StringIO()
                for k, row in enumerate(decision_rows(n), 1):
                    buf.write("\t".join(str(v) if not isinstance(v, datetime) else v.isoformat()
                                        for v in row))
                    buf.write("\n")
                    if k % 50_000 == 0:
                        copy.write(buf.getvalue())
                        buf = io.StringIO()
                copy.write(buf.getvalue())
            with cur.copy(f"COPY labels ({', '.join(LABEL_COLUMNS)}) FROM STDIN") as copy:
                for row in labels:
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE decisions")
            cur.execute("VACUUM ANALYZE labels")
        conn.autocommit = False
    finally:
        raw.close()


def seed_sqlite(engine: Any, n: int, labels: list[tuple[Any, ...]]) -> None:
    from store.tables import decisions
    from store.tables import labels as labels_table

    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for row in decision_rows(n):
            batch.append(dict(zip(DECISION_COLUMNS, row, strict=True)))
            if len(batch) == 100_000:
                conn.execute(decisions.insert(), batch)
                batch = []
        if batch:
            conn.execute(decisions.insert(), batch)
        conn.execute(labels_table.insert(),
                     [dict(zip(LABEL_COLUMNS, row, strict=True)) for row in labels])
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")


class StatementTimer:
    """Records (sql, params, seconds) of every statement an engine executes while on."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.on = False
        self.log: list[tuple[str, Any, float]] = []
        self._start: float = 0.0

        @event.listens_for(engine, "before_cursor_execute")
        def _before(_conn, _cursor, _stmt, _params, _ctx, _many):  # type: ignore[no-untyped-def]
            self._start = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(_conn, _cursor, stmt, params, _ctx, _many):  # type: ignore[no-untyped-def]
            if self.on:
                self.log.append((stmt, params, time.perf_counter() - self._start))


def selects(log: list[tuple[str, Any, float]]) -> list[tuple[str, Any, float]]:
    """The queries of a call (not SQLite's BEGIN/PRAGMA housekeeping)."""
    return [e for e in log if e[0].lstrip().upper().startswith("SELECT")]


def explain(engine: Any, statements: list[tuple[str, Any, float]]) -> None:
    prefix = ("EXPLAIN (ANALYZE, BUFFERS) " if engine.dialect.name == "postgresql"
              else "EXPLAIN QUERY PLAN ")
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for sql, params, _ in statements:
            print(f"--- {engine.dialect.name}: {' '.join(sql.split())[:140]}...")
            cur.execute(prefix + sql, params)
            for row in cur.fetchall():
                print("   ", " | ".join(str(v) for v in row))
        raw.rollback()
    finally:
        raw.close()


def time_counts(engine: Any, runs: int, by_day: bool,
                do_explain: bool) -> dict[str, Any]:
    from store.counts import matured_counts

    timer = StatementTimer(engine)
    report = matured_counts(engine, timedelta(hours=48), by_day=by_day)  # warm-up
    seconds, per_statement = [], defaultdict(list)
    for _ in range(runs):
        timer.log.clear()
        timer.on = True
        start = time.perf_counter()
        matured_counts(engine, timedelta(hours=48), by_day=by_day)
        seconds.append(time.perf_counter() - start)
        timer.on = False
        for k, (_sql, _params, s) in enumerate(selects(timer.log)):
            per_statement[k].append(s)
    names = ["stream_clock: sample", "stream_clock: edge", "stream_clock: max", "counts", "orphans"]
    if do_explain:
        timer.log.clear()
        timer.on = True
        matured_counts(engine, timedelta(hours=48), by_day=by_day)
        timer.on = False
        explain(engine, selects(timer.log))
    total = report.rows
    return {"p50_s": round(percentile(seconds, 50), 4), "p95_s": round(percentile(seconds, 95), 4),
            "min_s": round(min(seconds), 4), "max_s": round(max(seconds), 4),
            "statement_p50_s": {names[k] if k < len(names) else str(k):
                                round(percentile(v, 50), 4) for k, v in per_statement.items()},
            "groups": len(total), "decisions": sum(r.decisions for r in total),
            "labelled": sum(r.labelled for r in total), "orphans": report.orphans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="decisions to seed")
    parser.add_argument("--labels", type=int, default=2000, help="label rows to seed (about)")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per configuration")
    parser.add_argument("--batch-size", type=int, default=None, help="(unused; for symmetry)")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    add_db_arguments(parser)
    args = parser.parse_args()

    from store.db import connect

    chosen = backends(args)
    results: dict[str, Any] = {}
    labels = label_rows(args.rows, args.labels)
    with tempfile.TemporaryDirectory(prefix="bench-counts-") as tmp_name:
        for name, url in chosen:
            db = fresh_db(url, Path(tmp_name) / name)
            engine = connect(db)
            seed_model(engine)
            start = time.monotonic()
            (seed_postgres if name == "postgresql" else seed_sqlite)(engine, args.rows, labels)
            seeded = time.monotonic() - start
            print(f"{name}: seeded {args.rows:,} decisions + {len(labels):,} labels in "
                  f"{seeded:.1f} s", flush=True)
            results[name] = {"db": redacted(db), "seed_seconds": round(seeded, 1)}
            for by_day in (True, False):
                r = time_counts(engine, args.runs, by_day, args.explain)
                results[name]["by_day" if by_day else "total"] = r
                print(f"  by_day={by_day!s:<5}  p50 {r['p50_s']:.3f} s  p95 {r['p95_s']:.3f} s  "
                      f"(min {r['min_s']:.3f}, max {r['max_s']:.3f}; per statement p50 "
                      f"{r['statement_p50_s']}; {r['groups']} groups)", flush=True)
            engine.dispose()
    print(f"(matured_counts(engine, 48h), {args.runs} runs each after one warm-up; aim p50 < 1 s "
          "on PostgreSQL)")
    print(json.dumps({"bench": "counts", "decisions": args.rows, "labels": len(labels),
                      "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()
