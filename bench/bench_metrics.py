"""Cost of the Prometheus metrics: scorer throughput with metrics on (a :class:`ScorerMetrics`
served on /metrics and scraped once a second, as Prometheus would) vs off, measured in the same
run on the same topic (each run its own consumer group), on SQLite (and PostgreSQL when given).

    .venv/bin/python bench/bench_metrics.py [--rows 100000] [--batch-size 2000] [--repeats 3]
        [--backends sqlite,postgresql] [--pg-url URL | --db URL] [--profile]

Runs alternate (on, off, on, off, ...) to spread this machine's noise over both; the tables a
run writes are emptied before every run. Reports every rate, the per-pair ratio on/off and its
median (aim: >= 0.95). ``--profile`` adds one pyinstrument-profiled pair per backend (not
counted). PostgreSQL from ``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.request
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
from common import (
    ab_summary,
    backends,
    fresh_db,
    maybe_profile,
    redacted,
    replayed_topics,
    score_run,
    scorer_ab_parser,
    train_small,
)


class Scraper:
    """Serve ``metrics`` on a free loopback port and GET /metrics every ``every`` seconds."""

    def __init__(self, metrics: Any, every: float = 1.0) -> None:
        from metrics import serve
        from producer.broker import free_port

        port = free_port()
        self.server = serve(metrics, port)
        self.url, self.every = f"http://127.0.0.1:{port}/metrics", every
        self.scrapes = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            with urllib.request.urlopen(self.url, timeout=5) as r:
                r.read()
            self.scrapes += 1

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        self.server.shutdown()
        self.server.server_close()


def score_once(engine: Any, model: Any, bootstrap: str, topic: str, expected: int,
               with_metrics: bool, batch_size: int, profile: str = "") -> float:
    """Events/s (busy time) of one scorer run over ``topic`` in a fresh consumer group."""
    from metrics import ScorerMetrics

    metrics = ScorerMetrics() if with_metrics else None
    scraper = Scraper(metrics) if metrics is not None else None
    try:
        with maybe_profile(bool(profile), profile):
            summary = score_run(engine, model, bootstrap, topic, expected, batch_size,
                                group=f"bench-metrics-{'on' if with_metrics else 'off'}",
                                metrics=metrics, expected_alert_rate=0.002)
    finally:
        if scraper is not None:
            scraper.close()
    if metrics is not None:
        if metrics.consumed._value.get() != expected:  # noqa: SLF001 - a check, not an API
            raise SystemExit("metrics missed events")
        if scraper is not None and scraper.scrapes == 0:
            raise SystemExit("the run was shorter than one scrape: use more --rows")
    return summary.rate


def run_backend(name: str, url: str | None, tmp: Path, bootstrap: str, topic: str, sent: int,
                args: argparse.Namespace) -> dict[str, Any]:
    from scorer.model import load_model
    from store.db import connect

    home = tmp / f"home-{name}"
    home.mkdir()
    os.environ["FRAUDSTREAM_HOME"] = str(home)
    db = fresh_db(url, tmp / name)
    train_small(args.train_rows, tmp, db, home)
    engine = connect(db)
    model = load_model(engine, home=home)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for with_metrics in (True, False):
            rate = score_once(engine, model, bootstrap, topic, sent, with_metrics,
                              args.batch_size)
            rates["on" if with_metrics else "off"].append(rate)
            print(f"  [{name}] metrics {'on ' if with_metrics else 'off'}: {rate:>9,.0f} "
                  "events/s", flush=True)
    if args.profile:
        for with_metrics in (True, False):
            score_once(engine, model, bootstrap, topic, sent, with_metrics, args.batch_size,
                       profile=f"{name} metrics={'on' if with_metrics else 'off'}")
    engine.dispose()
    return {"db": redacted(db), **ab_summary(rates, "on", "off")}

def main() -> None:
    parser = scorer_ab_parser(__doc__.splitlines()[0], repeats=3)
    args = parser.parse_args()
    chosen = backends(args)
    results: dict[str, Any] = {}
    with replayed_topics("bench-metrics", args.rows) as run:
        topic, sent = run.topics["none"]
        for name, url in chosen:
            print(f"{name}: scoring {sent:,} events per run, batch {args.batch_size}, "
                  f"{args.repeats} on/off pair(s)", flush=True)
            results[name] = run_backend(name, url, run.tmp, run.bootstrap, topic, sent, args)

    print()
    print(f"{'backend':<11} {'on eps':>10} {'off eps':>10} {'ratio (median)':>15}  per pair")
    for name, r in results.items():
        print(f"{name:<11} {r['median_on_eps']:>10,} {r['median_off_eps']:>10,} "
              f"{r['median_ratio']:>15.3f}  {r['ratios']}")
    print("(on: ScorerMetrics observed every batch, /metrics served and scraped every second; "
          "aim ratio >= 0.95)")
    print(json.dumps({"bench": "metrics", "events": args.rows, "batch_size": args.batch_size,
                      "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
