"""Speed of the behaviour features (``schemas.behaviour.compute``) over a simulated keyed
history, against the handbook's way of computing the card windows (pandas groupby + rolling over
time) on the same rows, in the same run.

    .venv/bin/python bench/bench_behaviour.py [--customers 5000] [--terminals 10000]
        [--days 183] [--runs 3]

Prints rows, the best-of-``runs`` seconds and rows/s of the full 14 features (weekend, night,
card windows 1/7/30 d, terminal windows 1/7/30 d delayed 7 d, frauds known 7 d after), the
seconds of the pandas card windows alone, and the ratio. Aim: >= 1,000,000 rows/minute.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from schemas.behaviour import BehaviourSpec, History, compute, known_after_delay
from trainer.keyed_synth import SimulationParams, simulate


def pandas_card_windows(history: History, windows: tuple[int, ...]) -> pd.DataFrame:
    """The handbook's card features: per customer, rolling count and mean amount over time."""
    frame = pd.DataFrame({"customer": history.customer, "amount": history.amount,
                          "time": pd.to_datetime(history.time_us, unit="us")})
    out = {}
    for w in windows:
        rolled = frame.groupby("customer").rolling(f"{w}D", on="time")["amount"]
        out[f"count_{w}"] = rolled.count()
        out[f"mean_{w}"] = rolled.mean()
    return pd.DataFrame(out)


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=183)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sim = simulate(SimulationParams(customers=args.customers, terminals=args.terminals,
                                    days=args.days))
    time_us = (np.datetime64("2018-04-01", "us").astype(np.int64)
               + sim["seconds"] * 1_000_000)
    spec = BehaviourSpec()
    history = History(time_us=time_us, customer=sim["customer"], terminal=sim["terminal"],
                      amount=sim["amount"],
                      fraud_known=known_after_delay(time_us, sim["fraud"], spec.delay_days))
    rows = len(time_us)
    ours = best_of(args.runs, lambda: compute(spec, history))
    theirs = best_of(1, lambda: pandas_card_windows(history, spec.customer_windows_days))
    print(json.dumps({
        "rows": rows, "features": len(spec.feature_names()),
        "compute_s": round(ours, 3), "rows_per_s": round(rows / ours),
        "rows_per_minute": round(60 * rows / ours),
        "pandas_card_windows_only_s": round(theirs, 3),
        "speedup_vs_pandas_card_windows": round(theirs / ours, 2),
        "note": "shared 2-core machine: compare the ratio, not the seconds",
    }, indent=2))


if __name__ == "__main__":
    main()
