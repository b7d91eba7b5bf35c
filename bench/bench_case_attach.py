"""Cost of attaching a keyed batch's alerts to their cards' cases (``store.cases.attach_to_cases``,
run by the keyed scorer inside its batch transaction): today's set-based attach (a constant
number of statements per batch) vs the per-card attach it replaced (a locked SELECT, an UPDATE
or INSERT of the case and an UPDATE of the alerts per card; kept here only to compare), in the
same run on the same store, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_case_attach.py [--alerts 2000] [--cards 1500]
        [--store-cards 20000] [--repeats 5] [--backends sqlite,postgresql]
        [--pg-url URL | --db URL]

The store first holds ``--store-cards`` cards' older alerts and cases (a third of the cards an
open case, a third a closed one, a third none). Each measured batch inserts ``--alerts`` new
alerts over ``--cards`` of those cards (1/3 each kind), then times the attach alone, checks that
both ways leave the same cases, and rolls back, so every run starts from the same store. Old
and new alternate; prints each run's milliseconds, the medians and old/new. PostgreSQL from
``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (a PostgreSQL driver before anything else heavy)
from common import add_db_arguments, backends, fresh_db, median, redacted

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, case, insert, select, update  # noqa: E402

from store.bulk import insert_ignore  # noqa: E402
from store.cases import attach_to_cases  # noqa: E402
from store.settle import close_settled  # noqa: E402
from store.tables import alerts, cases, model_versions  # noqa: E402

_CHUNK = 500


# --------------------------------------------------------------------------- the old attach
def attach_per_card(conn: Connection, alert_rows: Iterable[Mapping[str, Any]],
                    now: datetime | None = None) -> dict[str, int]:
    """The per-card attach as it was before the set-based one (for comparison only)."""
    keys: dict[str, set[int]] = defaultdict(set)
    for row in alert_rows:
        if row.get("card_id"):
            keys[row["transaction_id"]].add(int(row["model_version"]))
    if not keys:
        return {}
    a = alerts.c
    ids = sorted(keys)
    fresh: dict[str, list[Any]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        for r in conn.execute(select(a.transaction_id, a.model_version, a.card_id, a.score,
                                     a.amount, a.time_s, a.status)
                              .where(a.transaction_id.in_(ids[start:start + _CHUNK]),
                                     a.case_id.is_(None), a.card_id.is_not(None))):
            if r.model_version in keys[r.transaction_id]:
                fresh[r.card_id].append(r)
    now = now or datetime.now(UTC)
    touched = {card: _attach(conn, card, rows, now) for card, rows in sorted(fresh.items())}
    close_settled(conn, [touched[card] for card, rows in fresh.items()
                         if all(r.status == "closed" for r in rows)], now)
    return touched


def _attach(conn: Connection, card: str, rows: list[Any], now: datetime) -> int:
    c = cases.c
    top = max(r.score for r in rows)
    total = float(sum(r.amount for r in rows))
    first, last = min(r.time_s for r in rows), max(r.time_s for r in rows)
    case_id = conn.execute(select(c.id).where(c.card_id == card, c.status != "closed")
                           .with_for_update()).scalar()
    if case_id is None:
        case_id = conn.execute(insert(cases).values(
            card_id=card, status="open", max_score=top, n_alerts=len(rows), amount=total,
            first_time_s=first, last_time_s=last, opened_at=now, updated_at=now, revision=0,
        )).inserted_primary_key[0]
    else:
        conn.execute(update(cases).where(c.id == case_id).values(
            max_score=case((c.max_score < top, top), else_=c.max_score),
            n_alerts=c.n_alerts + len(rows), amount=c.amount + total,
            first_time_s=case((c.first_time_s > first, first), else_=c.first_time_s),
            last_time_s=case((c.last_time_s < last, last), else_=c.last_time_s),
            updated_at=now, revision=c.revision + 1))
    a = alerts.c
    by_version: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        by_version[r.model_version].append(r.transaction_id)
    for version, txs in by_version.items():
        for start in range(0, len(txs), _CHUNK):
            conn.execute(update(alerts).where(
                a.model_version == version, a.transaction_id.in_(txs[start:start + _CHUNK]),
                a.case_id.is_(None)).values(case_id=case_id))
    return int(case_id)


# --------------------------------------------------------------------------- the store
def alert_row(tx: str, card: str, score: float, amount: float, time_s: float,
              now: datetime) -> dict[str, Any]:
    return {"transaction_id": tx, "model_version": 1, "score": score, "threshold": 0.5,
            "amount": amount, "time_s": time_s, "source_topic": "keyed", "source_partition": 0,
            "source_offset": 0, "created_at": now, "card_id": card}


def seed(engine: Any, store_cards: int) -> None:
    """Model version 1; per card 3 older alerts in a case: open (card % 3 == 0), closed
    (== 1), none (== 2: the alerts have no case, as a ULB alert)."""
    rng, now = random.Random(7), datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(model_versions).values(
            version=1, created_at=now, strategy="weighted", threshold=0.5,
            threshold_policy="max-f1", metrics={}, artifact_dir="-", manifest_sha256="0" * 64,
            data_sha256="0" * 64, stage="production"))
        case_rows, alert_rows = [], []
        for n in range(store_cards):
            card = f"card-{n:07d}"
            kind = n % 3
            case_id = len(case_rows) + 1 if kind < 2 else None
            rows = [alert_row(f"old-{n}-{j}", card, 0.5 + rng.random() / 2, rng.random() * 100,
                              1000.0 * j, now) for j in range(3)]
            for r in rows:
                r["case_id"] = case_id
                r["status"] = "closed" if kind == 1 else "open"
            alert_rows += rows
            if case_id is not None:
                case_rows.append({
                    "id": case_id, "card_id": card, "status": "closed" if kind else "open",
                    "max_score": max(r["score"] for r in rows), "n_alerts": 3,
                    "amount": sum(r["amount"] for r in rows), "first_time_s": 0.0,
                    "last_time_s": 2000.0, "opened_at": now, "updated_at": now,
                    "revision": 0})
        insert_ignore(conn, cases, case_rows)
        insert_ignore(conn, alerts, alert_rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))")
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def batch_rows(n_alerts: int, n_cards: int, store_cards: int, run: int) -> list[dict[str, Any]]:
    rng, now = random.Random(run), datetime.now(UTC)
    cards = [f"card-{n:07d}" for n in rng.sample(range(store_cards), n_cards)]
    picks = cards + [rng.choice(cards) for _ in range(n_alerts - n_cards)]
    return [alert_row(f"new-{run}-{i}", card, 0.5 + rng.random() / 2, rng.random() * 100,
                      10_000.0 + i, now) for i, card in enumerate(picks)]


def timed(engine: Any, attach: Callable[..., dict[str, int]], rows: list[dict[str, Any]]
          ) -> tuple[float, list[tuple[Any, ...]]]:
    """Seconds the attach of ``rows`` took, and the cases it left (rolled back after)."""
    now = datetime.now(UTC)
    with engine.connect() as conn:
        tx = conn.begin()
        insert_ignore(conn, alerts, rows)
        started = time.perf_counter()
        attach(conn, rows, now)
        seconds = time.perf_counter() - started
        c = cases.c
        left = [tuple(r) for r in conn.execute(
            select(c.card_id, c.status, c.n_alerts, c.max_score, c.first_time_s, c.last_time_s,
                   c.revision).order_by(c.card_id, c.status, c.first_time_s))]
        left.append(tuple(sorted(conn.execute(select(alerts.c.transaction_id, cases.c.card_id)
                                              .join_from(alerts, cases,
                                                         alerts.c.case_id == cases.c.id)
                                              .where(alerts.c.transaction_id.like("new-%"))
                                              ).all())))
        tx.rollback()
    return seconds, left


def run_backend(name: str, url: str | None, tmp: Path, args: argparse.Namespace) -> None:
    from store.db import connect

    engine = connect(fresh_db(url, tmp / name))
    seed(engine, args.store_cards)
    ms: dict[str, list[float]] = {"old": [], "new": []}
    for run in range(args.repeats):
        rows = batch_rows(args.alerts, args.cards, args.store_cards, run)
        left = {}
        for label, attach in (("old", attach_per_card), ("new", attach_to_cases)):
            seconds, left[label] = timed(engine, attach, rows)
            ms[label].append(seconds * 1000)
        if left["old"] != left["new"]:
            raise SystemExit(f"{name}: the set-based attach left other cases than per-card")
    engine.dispose()
    ratios = [o / n for o, n in zip(ms["old"], ms["new"], strict=True)]
    where = redacted(url) if url else "sqlite (temp file)"
    print(f"{name} ({where}): batch of {args.alerts} alerts over {args.cards} cards, store of "
          f"{args.store_cards} cards")
    print(f"  old per-card ms: {[round(x, 1) for x in ms['old']]}  median {median(ms['old']):.1f}")
    print(f"  new set-based ms: {[round(x, 1) for x in ms['new']]}  median {median(ms['new']):.1f}")
    print(f"  old/new per pair: {[round(r, 1) for r in ratios]}  median {median(ratios):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--cards", type=int, default=1500)
    parser.add_argument("--store-cards", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    add_db_arguments(parser)
    args = parser.parse_args()
    if args.cards > args.alerts or args.cards > args.store_cards:
        raise SystemExit("--cards must be at most --alerts and --store-cards")
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in backends(args):
            run_backend(name, url, Path(tmp), args)


if __name__ == "__main__":
    main()
