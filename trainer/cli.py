"""``fraudstream synth`` and ``fraudstream train``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    synth = sub.add_parser("synth", help="write a synthetic creditcard.csv stand-in")
    synth.add_argument("--rows", type=int, required=True,
                       help="number of data rows to write (the ULB file has 284,807)")
    synth.add_argument("--out", type=Path, required=True,
                       help="output CSV path (creditcard.csv columns: Time, V1..V28, Amount, "
                            "Class)")
    synth.add_argument("--fraud-rate", type=float, default=0.00173,
                       help="share of fraud rows (the ULB data has 0.173 %%)")
    synth.add_argument("--seed", type=int, default=0,
                       help="random seed: the same seed writes the same file")
    synth.set_defaults(func=run_synth)

    from models import DEFAULT_FAMILY, FAMILIES
    from trainer.data import TUTORIAL_CSV_URL
    from trainer.model import STRATEGIES
    from trainer.threshold import DEFAULT_POLICY

    train = sub.add_parser("train", help="train, evaluate, report and register a model")
    train.add_argument("--csv", default=TUTORIAL_CSV_URL, help="path or URL (default: tutorial)")
    train.add_argument("--family", choices=tuple(FAMILIES), default=DEFAULT_FAMILY,
                       help="model family: dense (the tutorial's Keras net, default) or xgboost "
                            "(gradient-boosted trees)")
    train.add_argument("--strategy", choices=STRATEGIES, default="weighted",
                       help="class imbalance: weighted (xgboost: scale_pos_weight = neg/pos), "
                            "baseline, oversample (dense only)")
    train.add_argument("--compare", action="store_true",
                       help="also train the other two strategies and report them side by side")
    train.add_argument("--epochs", type=int, default=100,
                       help="maximum epochs (dense); early stopping on validation AUPRC usually "
                            "ends sooner")
    train.add_argument("--seed", type=int, default=42,
                       help="random seed for the split and the weights (same seed, same model)")
    train.add_argument("--threshold-policy", default=DEFAULT_POLICY,
                       help="fixed:T | max-f1 | precision:P | recall:R | alerts-per-day:K | "
                            "cost:review=C (chosen on validation)")
    train.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    train.add_argument("--json", action="store_true", help="print one JSON summary object")
    train.set_defaults(func=run_train)

    from trainer import retrain_cli

    retrain_cli.register(sub)


def run_synth(args: argparse.Namespace) -> int:
    from trainer.synth import write_csv

    path = write_csv(args.out, args.rows, fraud_rate=args.fraud_rate, seed=args.seed)
    print(path)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from schemas.errors import FraudstreamError
    from trainer.pipeline import train

    if args.epochs < 1:
        raise FraudstreamError("--epochs must be >= 1")
    summary = train(args.csv, strategy=args.strategy, compare=args.compare, epochs=args.epochs,
                    seed=args.seed, policy=args.threshold_policy, db=args.db,
                    family=args.family)
    if args.json:
        print(json.dumps(summary))
        return 0
    test = summary["metrics"]["test"]
    print(f"registered model version {summary['version']} ({summary['family']}, "
          f"{summary['stage']}), "
          f"threshold {summary['threshold']:.4f} ({summary['threshold_policy']})")
    print("test: " + ", ".join(f"{k}={test[k]:.4g}" for k in
                               ("auc", "prc", "precision", "recall", "tp", "fp", "fn")))
    print(f"report: {summary['report']}")
    return 0
