"""Where PostgreSQL's binary COPY beats a multi-row INSERT for a batch's rows
(``store.bulk.COPY_MIN_ROWS``): the same batches written both ways, alternated, per size.

    .venv/bin/python bench/bench_copy_threshold.py [--sizes 5,10,20,32,50,75,150,300]
        [--rounds 30] [--pg-url URL]

Three writes of a keyed batch, into the real tables: ``decisions`` (``insert_ignore``),
``keyed_transactions`` (``insert_ignore``, three indexes) and ``card_state`` (``upsert`` of
cards that exist, through COPY into a staging table). Each write is timed alone inside its own
transaction (rows built before, begin and commit not timed), with 10,000 rows stored first.
Prints the median ms of each way and their ratio (INSERT / COPY: above 1, COPY is faster).
PostgreSQL from ``--pg-url`` or ``$FRAUDSTREAM_BENCH_PG_URL`` is RESET.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from common import PG_ENV, decision_columns, reset_postgres

import store.bulk as bulk
from store.db import connect, migrate
from store.tables import card_state, decisions, keyed_transactions

STORED = 10_000
CARD_KEYS, CARD_COLUMNS = ["group_id", "customer_id"], ["latest_us", "times", "amounts"]


def fact_rows(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    return [{"transaction_id": uuid.uuid4().hex, "terminal_id": f"T{rng.integers(10_000):05d}",
             "time_us": int(rng.integers(1 << 50)), "customer_id": f"C{rng.integers(STORED):07d}",
             "amount": 12.5} for _ in range(n)]


def card_rows(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    cards = sorted(set(rng.choice(STORED, n, replace=False).tolist()))
    return [{"group_id": "bench", "customer_id": f"C{c:07d}", "latest_us": 5,
             "times": np.arange(8, dtype="<i8").tobytes(), "amounts": np.ones(8).tobytes()}
            for c in cards]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20,32,50,75,150,300")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pg-url", default=os.environ.get(PG_ENV))
    args = parser.parse_args()
    if not args.pg_url:
        raise SystemExit(f"PostgreSQL only: give --pg-url or set ${PG_ENV} (it is RESET)")
    reset_postgres(args.pg_url)
    engine = connect(args.pg_url)
    migrate(engine)
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        bulk.upsert(conn, card_state, card_rows(STORED, rng), CARD_KEYS, CARD_COLUMNS)
        bulk.insert_ignore(conn, keyed_transactions, fact_rows(STORED, rng))
        bulk.insert_ignore(conn, decisions, decision_columns(STORED, 0))
    writes: dict[str, tuple[Callable[[int], Any], Callable[[Any, Any], None]]] = {
        "decisions": (lambda n: decision_columns(n, int(rng.integers(1 << 40))),
                      lambda conn, rows: bulk.insert_ignore(conn, decisions, rows)),
        "keyed_transactions": (lambda n: fact_rows(n, rng),
                               lambda conn, rows: bulk.insert_ignore(conn, keyed_transactions,
                                                                     rows)),
        "card_state upsert": (lambda n: card_rows(n, rng),
                              lambda conn, rows: bulk.upsert(conn, card_state, rows, CARD_KEYS,
                                                             CARD_COLUMNS)),
    }
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        for name, (make, write) in writes.items():
            times: dict[str, list[float]] = {"insert": [], "copy": []}
            for _ in range(args.rounds):  # alternated: the machine's noise spread over both
                for way, threshold in (("insert", 1 << 30), ("copy", 1)):
                    bulk.COPY_MIN_ROWS = threshold
                    rows = make(n)
                    with engine.begin() as conn:
                        conn.exec_driver_sql("SELECT 1")  # the transaction begun, not timed
                        start = time.perf_counter()
                        write(conn, rows)
                        times[way].append(time.perf_counter() - start)
            insert_ms, copy_ms = (1000 * statistics.median(times[w]) for w in ("insert", "copy"))
            results.append({"rows": n, "write": name, "insert_ms": round(insert_ms, 3),
                            "copy_ms": round(copy_ms, 3),
                            "insert_over_copy": round(insert_ms / copy_ms, 2)})
            print(f"{n:5d} rows  {name:20s} INSERT {insert_ms:6.2f} ms  COPY {copy_ms:6.2f} ms"
                  f"  INSERT/COPY {insert_ms / copy_ms:5.2f}", flush=True)
    print(json.dumps({"bench": "copy_threshold", "results": results}))


if __name__ == "__main__":
    main()
