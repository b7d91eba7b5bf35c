"""Cost of the decision log: scorer throughput writing a ``decisions`` row per event vs the same
scorer with ``ScoreConfig(log_decisions=False)``, measured in the same run on the same topic
(each run its own consumer group), on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_decisions.py [--rows 100000] [--batch-size 2000]
        [--repeats 2] [--no-inline] [--backends sqlite,postgresql] [--pg-url URL | --db URL]
        [--profile]

The transactions are replayed with ``labels="none"``: no event carries ``is_fraud``, so the
only rows per event are decisions (plus the few alerts). A second topic replayed with
``labels="inline"`` measures the same ratio when every event also writes an inline label row
(``--no-inline`` skips it). Runs alternate (with, without, with, without, ...) to spread this
machine's noise over both; the tables written (decisions, alerts, labels) are emptied before
every run, so each run inserts into the same empty tables. Reports every rate, the per-pair
ratio with/without and its median (aim: >= 0.85). ``--profile`` adds one pyinstrument-profiled
pair per backend (not counted). PostgreSQL from ``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or
``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
from common import (
    ab_summary,
    backends,
    count,
    fresh_db,
    maybe_profile,
    redacted,
    replayed_topics,
    score_run,
    scorer_ab_parser,
    train_small,
)


def score_once(engine: Any, model: Any, bootstrap: str, topic: str, expected: int,
               log_decisions: bool, batch_size: int, profile: str = "") -> float:
    """Events/s (busy time) of one scorer run over ``topic`` in a fresh consumer group."""
    with maybe_profile(bool(profile), profile):
        summary = score_run(engine, model, bootstrap, topic, expected, batch_size,
                            group=f"bench-{'with' if log_decisions else 'without'}",
                            log_decisions=log_decisions)
    decided = count(engine, "decisions")
    if decided != (expected if log_decisions else 0):
        raise SystemExit(f"{decided} decisions after a run with log_decisions={log_decisions}")
    return summary.rate


def run_backend(name: str, url: str | None, tmp: Path, bootstrap: str,
                topics: dict[str, tuple[str, int]], args: argparse.Namespace) -> dict[str, Any]:
    from scorer.model import load_model
    from store.db import connect

    home = tmp / f"home-{name}"
    home.mkdir()
    os.environ["FRAUDSTREAM_HOME"] = str(home)
    db = fresh_db(url, tmp / name)
    train_small(args.train_rows, tmp, db, home)
    engine = connect(db)
    model = load_model(engine, home=home)
    out: dict[str, Any] = {"db": redacted(db)}
    for variant, (topic, sent) in topics.items():
        rates: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(args.repeats):
            for log_decisions in (True, False):
                rate = score_once(engine, model, bootstrap, topic, sent, log_decisions,
                                  args.batch_size)
                rates["with" if log_decisions else "without"].append(rate)
                print(f"  [{name}/{variant}] {'with   ' if log_decisions else 'without'} "
                      f"decisions: {rate:>9,.0f} events/s", flush=True)
        out[variant] = ab_summary(rates, "with", "without")
        if args.profile:
            for log_decisions in (True, False):
                score_once(engine, model, bootstrap, topic, sent, log_decisions, args.batch_size,
                           profile=f"{name}/{variant} log_decisions={log_decisions}")
    engine.dispose()
    return out


def main() -> None:
    parser = scorer_ab_parser(__doc__.splitlines()[0], repeats=2)
    parser.add_argument("--no-inline", action="store_true",
                        help="skip the inline-labels variant")
    args = parser.parse_args()
    chosen = backends(args)
    results: dict[str, Any] = {}
    modes = ("none",) + (() if args.no_inline else ("inline",))
    with replayed_topics("bench-dec", args.rows, modes) as run:
        topics = {f"labels={mode}": topic for mode, topic in run.topics.items()}
        for name, url in chosen:
            print(f"{name}: scoring {args.rows:,} events per run, batch {args.batch_size}, "
                  f"{args.repeats} with/without pair(s) per variant", flush=True)
            results[name] = run_backend(name, url, run.tmp, run.bootstrap, topics, args)

    print()
    print(f"{'backend':<11} {'replay':<14} {'with eps':>10} {'without eps':>12} "
          f"{'ratio (median)':>15}  per pair")
    for name, res in results.items():
        for variant in topics:
            r = res[variant]
            print(f"{name:<11} {variant:<14} {r['median_with_eps']:>10,} "
                  f"{r['median_without_eps']:>12,} {r['median_ratio']:>15.3f}  {r['ratios']}")
    print("(labels=none: no inline label rows, decisions are the only per-event rows; "
          "labels=inline: every event also writes a label row in both runs; aim ratio >= 0.85)")
    print(json.dumps({"bench": "decisions", "events": args.rows, "batch_size": args.batch_size,
                      "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
