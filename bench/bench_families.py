"""Model families in the scorer, each against the production-only Keras (dense) scorer measured
in the same run on the same topic:

  throughput  dense (reference) · xgboost · dense + an xgboost shadow (``score --shadow``)
  explain     cost per alert of each family's explanation (top features of a flagged row)
  start-up    seconds and peak memory (max RSS) of a fresh process that loads the production
              model the scorer's way (numpy / XGBoost JSON, no TensorFlow) vs the Keras way
              (``import keras`` + ``keras.models.load_model``), as every scorer replica did
              before the families landed

    .venv/bin/python bench/bench_families.py [--rows 100000] [--batch-size 2000] [--repeats 2]
        [--backends sqlite,postgresql] [--pg-url URL | --db URL]

Runs alternate (dense, xgboost, shadow, dense, ...) so this machine's noise falls on every
variant; the tables a run writes are emptied before every run. PostgreSQL from
``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
from common import (
    backends,
    fresh_db,
    median,
    redacted,
    replayed_topics,
    score_run,
    scorer_ab_parser,
)

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("dense", "xgboost", "dense+shadow")

# A fresh interpreter loads the model and reports (seconds, max RSS in MB) on stdout.
_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
how, db, home, version = sys.argv[1:5]
if how == "scorer":
    from pathlib import Path
    from scorer.model import load_model
    from store.db import connect
    model = load_model(connect(db, create=False), int(version), home=Path(home))
else:
    import keras
    from store import registry
    from store.db import connect
    from pathlib import Path
    record = registry.get(connect(db, create=False), int(version))
    model = keras.models.load_model(registry.verify(record, Path(home)) / "model.keras")
seconds = time.perf_counter() - t0
# VmHWM is this process image's own peak (getrusage's ru_maxrss survives exec: it would carry
# the parent's peak).
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "max_rss_mb": hwm_kb / 1024}))
"""


def train_family(rows: int, tmp: Path, db: str, home: Path, family: str) -> None:
    from trainer.pipeline import train
    from trainer.synth import write_csv

    csv = tmp / f"train-{rows}.csv"
    if not csv.exists():
        write_csv(csv, rows, seed=3)
    train(str(csv), epochs=2, seed=1, db=db, home=home, family=family)


def score_once(engine: Any, model: Any, shadow: Any, bootstrap: str, topic: str, expected: int,
               batch_size: int) -> tuple[float, int]:
    """(events/s (busy time), alerts) of one scorer run over ``topic`` in a fresh group."""
    summary = score_run(engine, model, bootstrap, topic, expected, batch_size,
                        group="bench-families", shadow=shadow)
    if shadow is not None and summary.shadow_scored != expected:
        raise SystemExit(f"shadow scored {summary.shadow_scored}, expected {expected}")
    return summary.rate, summary.flagged


def explain_cost(model: Any, x: Any, alerts: int = 2000, repeats: int = 5) -> dict[str, float]:
    """Microseconds per alert of explaining ``alerts`` rows, and of scoring them (for scale)."""
    rows = x[:alerts]
    explain, score = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.net.explain(rows)
        explain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.net.score(rows)
        score.append(time.perf_counter() - t0)
    n = len(rows)
    return {"explain_us_per_alert": median(explain) / n * 1e6,
            "score_us_per_row": median(score) / n * 1e6}


def startup(how: str, db: str, home: Path, version: int, repeats: int = 3) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _STARTUP, how, db, str(home), str(version)],
                             cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"seconds": median([r["seconds"] for r in runs]),
            "max_rss_mb": median([r["max_rss_mb"] for r in runs])}


def run_backend(name: str, url: str | None, tmp: Path, bootstrap: str, topic: str, sent: int,
                x_sample: Any, args: argparse.Namespace) -> dict[str, Any]:
    from scorer.model import load_model
    from store.db import connect

    home = tmp / f"home-{name}"
    home.mkdir()
    os.environ["FRAUDSTREAM_HOME"] = str(home)
    db = fresh_db(url, tmp / name)
    train_family(args.train_rows, tmp, db, home, "dense")  # version 1, production
    train_family(args.train_rows, tmp, db, home, "xgboost")  # version 2, candidate
    engine = connect(db)
    dense, xgb = load_model(engine, 1, home=home), load_model(engine, 2, home=home)
    setups = {"dense": (dense, None), "xgboost": (xgb, None), "dense+shadow": (dense, xgb)}
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    flagged: dict[str, int] = {}
    score_once(engine, dense, None, bootstrap, topic, sent, args.batch_size)  # warm-up, uncounted
    for _ in range(args.repeats):
        for variant in VARIANTS:
            model, shadow = setups[variant]
            rate, flagged[variant] = score_once(engine, model, shadow, bootstrap, topic, sent,
                                                args.batch_size)
            rates[variant].append(rate)
            print(f"  [{name}] {variant:<13} {rate:>9,.0f} events/s, {flagged[variant]:,} "
                  "alerts", flush=True)
    engine.dispose()
    ref = median(rates["dense"])
    result: dict[str, Any] = {"db": redacted(db)}
    for variant in VARIANTS:
        result[variant] = {"eps": [round(r) for r in rates[variant]],
                           "median_eps": round(median(rates[variant])),
                           "ratio_vs_dense": round(median(rates[variant]) / ref, 3),
                           "alerts": flagged[variant]}
    if name == "sqlite":  # model-only figures do not depend on the database
        x = dense.contract.transform(x_sample)
        result["explain"] = {"dense": explain_cost(dense, x), "xgboost": explain_cost(xgb, x)}
        result["startup"] = {"scorer (numpy, no TensorFlow)": startup("scorer", db, home, 1),
                             "keras load_model": startup("keras", db, home, 1)}
    return result


def main() -> None:
    parser = scorer_ab_parser(__doc__.splitlines()[0], repeats=2)
    args = parser.parse_args()
    import numpy as np

    chosen = backends(args)
    results: dict[str, Any] = {}
    with replayed_topics("bench-families", args.rows) as run:
        topic, sent = run.topics["none"]
        raw = np.loadtxt(run.csv, delimiter=",", skiprows=1, max_rows=2000, dtype=np.float64)
        x_sample = raw[:, 1:30]  # V1..V28, Amount (the raw contract's order)
        for name, url in chosen:
            print(f"{name}: scoring {sent:,} events per run, batch {args.batch_size}, "
                  f"{args.repeats} round(s) of {', '.join(VARIANTS)}", flush=True)
            results[name] = run_backend(name, url, run.tmp, run.bootstrap, topic, sent,
                                        x_sample, args)

    print()
    print(f"{'backend':<11} " + " ".join(f"{v + ' eps (×dense)':>26}" for v in VARIANTS))
    for name, r in results.items():
        print(f"{name:<11} " + " ".join(
            f"{r[v]['median_eps']:>17,} ({r[v]['ratio_vs_dense']:.3f})" for v in VARIANTS))
    for r in results.values():
        for family, cost in r.get("explain", {}).items():
            print(f"explain {family:<8} {cost['explain_us_per_alert']:8.1f} µs per alert "
                  f"(scoring: {cost['score_us_per_row']:.2f} µs per row)")
        for how, s in r.get("startup", {}).items():
            print(f"start-up {how:<30} {s['seconds']:6.2f} s  peak {s['max_rss_mb']:6.0f} MB")
    print(json.dumps({"bench": "families", "events": args.rows, "batch_size": args.batch_size,
                      "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
