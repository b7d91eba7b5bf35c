"""Latency of the desk's card queue with a large store: the card queue's first page and a
case's page (HTML, a logged-in session; JSON, a bearer token), p50/p95 per scenario.

    .venv/bin/python bench/bench_cards.py [--alerts 1000000] [--cards 100000] [--runs 40]
        [--pg-url URL | --db URL] [--explain]

The database is migrated (the queue's indexes are migration 0010's), then seeded with psycopg
``COPY`` (PostgreSQL only): ``alerts`` keyed alerts over ``cards`` cards (1-19 a card, over 30
days of event time), each card's alerts in one or two cases — a third of the cards have a
closed case and a later one; the cases that are not followed are 60 % closed, 5 % claimed by
one of 20 analysts, 35 % open — and every 4th alert's transaction labelled; then ANALYZE.
Requests go through the whole ASGI app (TestClient). Scenarios: the open card queue's first
page, page 20 (following cursors), one analyst's claimed cases, every status; a case page
(random cases, each with its alerts and their current labels). Aim: p95 < 150 ms.
PostgreSQL from ``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (a PostgreSQL driver before anything else heavy)
from bench_desk import (
    ANALYSTS,
    HEADER,
    LABEL_COLUMNS,
    LABELLED_EVERY,
    SPAN_S,
    add_model,
    desk_clients,
    timed,
)
from common import PG_ENV, fresh_db, percentile, redacted

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ALERT_COLUMNS = ("transaction_id", "model_version", "score", "threshold", "amount", "time_s",
                 "source_topic", "source_partition", "source_offset", "created_at", "card_id",
                 "case_id", "status", "assignee", "disposition", "revision")
CASE_COLUMNS = ("id", "card_id", "status", "assignee", "disposition", "max_score", "n_alerts",
                "amount", "first_time_s", "last_time_s", "opened_at", "closed_at", "revision")
SCENARIOS: dict[str, dict[str, str]] = {
    "open cards, first page": {},
    "one analyst's claimed": {"status": "claimed", "assignee": "analyst07"},
    "all statuses": {"status": "all"},
}


def generate(alerts: int, cards: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(case rows, alert rows): each card's alerts in time order, split into its cases."""
    rng = random.Random(21)
    now = datetime.now(UTC)
    per_card = [1 + rng.randrange(19) for _ in range(cards)]
    scale = alerts / sum(per_card)
    counts = [max(1, round(n * scale)) for n in per_card]
    counts[-1] = max(1, counts[-1] + alerts - sum(counts))
    case_rows, alert_rows = [], []
    n = 0
    for card_no, count in enumerate(counts):
        card = f"card-{card_no:07d}"
        times = sorted(rng.random() * SPAN_S for _ in range(count))
        split = count // 2 if card_no % 3 == 0 and count > 1 else 0
        groups = [times[:split], times[split:]] if split else [times]
        for g, group in enumerate(groups):
            pick = rng.random()
            status = ("closed" if g < len(groups) - 1 or pick < 0.6
                      else "claimed" if pick < 0.65 else "open")
            assignee = rng.choice(ANALYSTS) if status != "open" else None
            disposition = rng.choice(("confirmed_fraud", "false_positive")) \
                if status == "closed" else None
            case_id = len(case_rows) + 1
            scores, amounts = [], []
            for t in group:
                score, amount = 0.5 + 0.5 * rng.random() ** 2, round(rng.random() * 400, 2)
                scores.append(score)
                amounts.append(amount)
                alert_rows.append((f"k-{n:09d}", 1, score, 0.5, amount, t, "keyed", n % 3,
                                   n // 3, now - timedelta(seconds=SPAN_S - t), card, case_id,
                                   status, assignee, disposition, 1 if assignee else 0))
                n += 1
            opened = now - timedelta(seconds=rng.random() * 3 * 86400)
            case_rows.append((case_id, card, status, assignee, disposition, max(scores),
                              len(group), sum(amounts), group[0], group[-1], opened,
                              opened + timedelta(hours=2) if status == "closed" else None,
                              1 if assignee else 0))
    return case_rows, alert_rows


def seed(url: str, alerts: int, cards: int) -> int:
    """Seed the store; return how many cases."""
    from store.db import connect

    engine = connect(url)
    if engine.dialect.name != "postgresql":
        raise SystemExit("bench_cards seeds with COPY: give a PostgreSQL URL")
    add_model(engine)
    started = time.perf_counter()
    case_rows, alert_rows = generate(alerts, cards)
    observed = datetime(2018, 7, 1, tzinfo=UTC)
    label_rows: Iterator[tuple[Any, ...]] = (
        (f"bench:{i}", alert_rows[i][0], int(i % 8 == 0), "chargeback" if i % 8 == 0
         else "analyst", observed, observed) for i in range(0, len(alert_rows), LABELLED_EVERY))
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        for table, columns, rows in (("cases", CASE_COLUMNS, case_rows),
                                     ("alerts", ALERT_COLUMNS, alert_rows),
                                     ("labels", LABEL_COLUMNS, label_rows)):
            with conn.cursor() as cur, cur.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
        conn.commit()
        for table in ("cases", "alerts", "labels"):
            conn.execute(f"ANALYZE {table}")
        conn.commit()
    finally:
        raw.close()
    print(f"seeded {len(alert_rows):,} alerts over {cards:,} cards in {len(case_rows):,} cases "
          f"in {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()
    return len(case_rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40, help="timed requests per scenario")
    parser.add_argument("--db", help="a PostgreSQL URL (RESET)")
    parser.add_argument("--pg-url", default=None, help=f"PostgreSQL URL (default ${PG_ENV})")
    parser.add_argument("--explain", action="store_true",
                        help="print PostgreSQL's plan of the card queue's first page")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from store.db import connect

    with tempfile.TemporaryDirectory(prefix="bench-cards-") as tmp:
        url = fresh_db(args.db or args.pg_url or os.environ.get(PG_ENV), Path(tmp))
        print(f"database: {redacted(url)}", flush=True)
        n_cases = seed(url, args.alerts, args.cards)
        engine = connect(url)
        browser, api = desk_clients(engine)
        worst = 0.0
        print(HEADER)

        def report(name: str, html: list[float], data: list[float]) -> None:
            nonlocal worst
            p95s = (percentile(html, 95), percentile(data, 95))
            worst = max(worst, *p95s)
            print(f"{name:<28} {percentile(html, 50):9.1f} {p95s[0]:7.1f} "
                  f"{percentile(data, 50):9.1f} {p95s[1]:7.1f}", flush=True)

        for name, params in {**SCENARIOS, "open cards, page 20": {}}.items():
            if name == "open cards, page 20":
                cursor = None
                for _ in range(19):
                    page = api.get("/api/cases", params={"cursor": cursor} if cursor else {})
                    cursor = page.json()["next_cursor"]
                params = {"cursor": cursor}
            timed(browser.get, "/cards", params, 3)  # warm-up
            report(name, timed(browser.get, "/cards", params, args.runs),
                   timed(api.get, "/api/cases", params, args.runs))
        rng = random.Random(3)
        html, data = [], []
        for _ in range(args.runs):
            case_id = rng.randrange(1, n_cases + 1)
            html += timed(browser.get, f"/cases/{case_id}", {}, 1)
            data += timed(api.get, f"/api/cases/{case_id}", {}, 1)
        report("a case page (random cases)", html, data)
        print(f"worst p95: {worst:.1f} ms (aim < 150 ms) with {args.alerts:,} alerts over "
              f"{args.cards:,} cards ({n_cases:,} cases)")
        if args.explain:
            with engine.connect() as conn:
                plan = conn.exec_driver_sql(
                    "EXPLAIN ANALYZE SELECT * FROM cases WHERE status = 'open' ORDER BY "
                    "max_score DESC, id DESC LIMIT 51").all()
            print("\n".join(r[0] for r in plan))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
