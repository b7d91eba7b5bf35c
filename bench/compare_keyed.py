"""Evidence for keyed training: each family on the default simulated keyed data, with and
without behaviour features (amount + weekend + night only), on the same protocol periods;
the simulator's time and fraud share by scenario.

    .venv/bin/python bench/compare_keyed.py [--csv PATH] [--families dense,xgboost] [--epochs 100]

Without ``--csv`` the default simulation (5,000 customers, 10,000 terminals, 183 days) is written
to a temporary file first (timed). Prints one JSON object: the simulator's figures, then per
family and feature set ROC AUC, average precision and CP@100 on the protocol's test set.
Nothing is registered.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from trainer.data import load_data
from trainer.keyed_pipeline import KeyedOptions, prepare, train_keyed_one
from trainer.keyed_synth import SimulationParams, write_keyed_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", help="a keyed CSV (default: simulate the default data)")
    parser.add_argument("--families", default="dense,xgboost")
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    out: dict = {"note": "shared 2-core machine: CPU seconds and ratios, not wall seconds"}
    with tempfile.TemporaryDirectory() as tmp:
        csv = args.csv
        if csv is None:
            csv = str(Path(tmp) / "keyed.csv")
            wall, cpu = time.perf_counter(), time.process_time()
            summary = write_keyed_csv(Path(csv), SimulationParams())
            out["simulator"] = {**summary, "wall_s": round(time.perf_counter() - wall, 1),
                                "cpu_s": round(time.process_time() - cpu, 1)}
        dataset = load_data(csv)
        for behaviour in (True, False):
            opts = KeyedOptions(behaviour=behaviour, epochs=args.epochs)
            start = time.perf_counter()
            prep = prepare(dataset, opts)
            key = "behaviour" if behaviour else "amount_and_time_only"
            out.setdefault("features_s", {})[key] = round(time.perf_counter() - start, 2)
            out["protocol"] = prep.split.periods.describe()
            for family in args.families.split(","):
                run = train_keyed_one(prep, family, "weighted", opts)
                test = run.metrics["test"]["threshold"]
                out.setdefault("results", {}).setdefault(family, {})[key] = {
                    "inputs": len(prep.spec.input_names()), "auc": round(test["auc"], 4),
                    "average_precision": round(test["prc"], 4),
                    "cp_at_100": round(test["card_precision_top_k"], 4)}
                print(json.dumps({family: {key: out["results"][family][key]}}), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
