"""The decision log's write cost once the table is large, with fraudstream's SQLite settings vs
SQLite's defaults, in the same run on the same database file:

    .venv/bin/python bench/bench_log_size.py [--prefill 1000000] [--blocks 3] [--batches 10]
        [--batch-size 2000] [--db URL]

Transaction ids are random (as the ULB replay's derived ids and most real ones are), so every
decision row lands at a random place of the primary-key index: once that index outgrows SQLite's
page cache, each row reads a page and dirties one, and every commit writes the dirty pages to
the WAL. The bench fills ``decisions`` with ``--prefill`` rows, then writes blocks of
``--batches`` batches of ``--batch-size`` rows through :func:`store.bulk.insert_ignore` (what
the scorer uses), one transaction per batch, alternating blocks with fraudstream's settings
(:data:`store.db.SQLITE_CACHE_KIB`, :data:`store.db.SQLITE_CHECKPOINT_PAGES`) and blocks with
SQLite's defaults (a 2 MiB cache, a checkpoint every 1,000 WAL pages). Durability is the same
in both: ``synchronous=FULL``, the WAL fsync-ed at every commit. Prints µs per row (insert and
commit) per block and the ratio of the medians. SQLite only: PostgreSQL's settings are the
server's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import decision_columns, fresh_db

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULTS = {"cache_size": -2000, "wal_autocheckpoint": 1000}  # SQLite's own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill", type=int, default=1_000_000)
    parser.add_argument("--blocks", type=int, default=3, help="blocks per variant")
    parser.add_argument("--batches", type=int, default=10, help="batches per block")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--db", help="an SQLite URL (default: a new file in a temp dir)")
    args = parser.parse_args()
    from sqlalchemy import text

    from store.bulk import insert_ignore
    from store.db import SQLITE_CACHE_KIB, SQLITE_CHECKPOINT_PAGES, connect
    from store.tables import decisions

    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_db(args.db, Path(tmp))
        if not url.startswith("sqlite"):
            raise SystemExit(f"bench_log_size measures SQLite's settings; got {url.split(':')[0]}")
        engine = connect(url)
        ours = {"cache_size": -SQLITE_CACHE_KIB, "wal_autocheckpoint": SQLITE_CHECKPOINT_PAGES}
        offset, started = 0, time.perf_counter()
        while offset < args.prefill:
            n = min(20_000, args.prefill - offset)
            with engine.begin() as conn:
                insert_ignore(conn, decisions, decision_columns(n, offset))
            offset += n
        print(f"prefilled {offset:,} decision rows in {time.perf_counter() - started:.1f} s",
              flush=True)
        per_row: dict[str, list[float]] = {"fraudstream": [], "sqlite defaults": []}
        for _ in range(args.blocks):
            for name, pragmas in (("sqlite defaults", DEFAULTS), ("fraudstream", ours)):
                with engine.connect() as conn:  # the pool's one connection, for this block
                    for pragma, value in pragmas.items():
                        conn.exec_driver_sql(f"PRAGMA {pragma}={value}")
                    conn.commit()
                    elapsed = 0.0
                    for _ in range(args.batches):
                        batch = decision_columns(args.batch_size, offset)
                        offset += args.batch_size
                        t0 = time.perf_counter()
                        with conn.begin():
                            insert_ignore(conn, decisions, batch)
                        elapsed += time.perf_counter() - t0
                us = elapsed / (args.batches * args.batch_size) * 1e6
                per_row[name].append(us)
                print(f"{name:>16}: {us:6.1f} µs a row (insert + commit), table at "
                      f"{offset:,} rows", flush=True)
        with engine.connect() as conn:
            total = conn.execute(text("SELECT count(*) FROM decisions")).scalar_one()
        engine.dispose()
    medians = {k: statistics.median(v) for k, v in per_row.items()}
    ratio = medians["sqlite defaults"] / medians["fraudstream"]
    print(f"median µs a row: fraudstream {medians['fraudstream']:.1f}, SQLite defaults "
          f"{medians['sqlite defaults']:.1f}: fraudstream writes {ratio:.2f}x as fast")
    print(json.dumps({"bench": "log_size", "rows": total, "batch_size": args.batch_size,
                      "us_per_row": {k: round(v, 1) for k, v in medians.items()},
                      "speedup": round(ratio, 2)}))


if __name__ == "__main__":
    main()
