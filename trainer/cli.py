"""``fraudstream synth``, ``fraudstream split`` and ``fraudstream train``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainer import keyed_cli


def register(sub: Any) -> None:
    synth = sub.add_parser("synth", help="write a synthetic CSV: the creditcard.csv stand-in "
                                         "(default) or keyed transactions with history")
    synth.add_argument("--kind", choices=("ulb", "keyed"), default="ulb",
                       help="ulb: creditcard.csv stand-in (V1..V28); keyed: the handbook's "
                            "simulator (customers, terminals, three fraud scenarios)")
    synth.add_argument("--rows", type=int,
                       help="number of data rows to write (ulb; required; the ULB file has "
                            "284,807)")
    synth.add_argument("--out", type=Path, required=True,
                       help="output CSV path (ulb: Time, V1..V28, Amount, Class; keyed: "
                            "TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, "
                            "TX_FRAUD, TX_FRAUD_SCENARIO)")
    synth.add_argument("--fraud-rate", type=float, default=0.00173,
                       help="share of fraud rows (ulb; the ULB data has 0.173 %%)")
    synth.add_argument("--seed", type=int, default=0,
                       help="random seed: the same seed writes the same file")
    keyed = synth.add_argument_group("keyed simulator (--kind keyed)")
    keyed.add_argument("--customers", type=int, default=5_000, help="customers (cards)")
    keyed.add_argument("--terminals", type=int, default=10_000, help="terminals")
    keyed.add_argument("--days", type=int, default=183, help="days simulated")
    keyed.add_argument("--start", default="2018-04-01", help="first day (UTC)")
    keyed.add_argument("--radius", type=float, default=5.0,
                       help="a customer uses the terminals within this distance (100x100 grid)")
    synth.set_defaults(func=run_synth)

    split = sub.add_parser(
        "split", help="cut a CSV by time into the rows that train and the rows replayed",
        description="Write OUT_DIR/train.csv (the earliest --train-share of the rows by Time) "
                    "and OUT_DIR/replay.csv (the rest), and say which rows went where: train on "
                    "one, replay the other, so no model is graded on the rows it learnt from.")
    split.add_argument("--csv", required=True, metavar="PATH_OR_URL",
                       help="creditcard.csv-shaped data (a path, .gz, or http(s) URL)")
    split.add_argument("--train-share", type=float, default=0.5,
                       help="share of the rows (the earliest by Time) that train the model")
    split.add_argument("--out-dir", type=Path, required=True,
                       help="directory for train.csv and replay.csv (created if missing)")
    split.add_argument("--json", action="store_true", help="print one JSON summary object")
    split.set_defaults(func=run_split)

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
    keyed_cli.add_flags(train)
    train.set_defaults(func=run_train)

    from trainer import retrain_cli

    retrain_cli.register(sub)


def run_split(args: argparse.Namespace) -> int:
    from trainer.split import split_file

    done = split_file(args.csv, args.out_dir, args.train_share)
    print(json.dumps(done.to_dict()) if args.json else "\n".join(done.lines()))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from schemas.errors import FraudstreamError

    if args.kind == "keyed":
        from trainer.keyed_synth import SimulationParams, write_keyed_csv

        params = SimulationParams(customers=args.customers, terminals=args.terminals,
                                  days=args.days, start=args.start, radius=args.radius,
                                  seed=args.seed)
        summary = write_keyed_csv(args.out, params)
        shares = ", ".join(f"scenario {s} {v['share']:.3%}"
                           for s, v in summary["by_scenario"].items())
        print(f"{args.out}: {summary['rows']:,} transactions, {summary['frauds']:,} frauds "
              f"({summary['fraud_share']:.3%}: {shares})")
        return 0
    if args.rows is None:
        raise FraudstreamError("--rows is required for --kind ulb")
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
                    family=args.family,
                    keyed=keyed_cli.options(args, epochs=args.epochs, seed=args.seed,
                                            policy=args.threshold_policy))
    if args.json:
        print(json.dumps(summary))
        return 0
    test = summary["metrics"]["test"]
    print(f"registered model version {summary['version']} ({summary['family']}, "
          f"{summary['stage']}), "
          f"threshold {summary['threshold']:.4f} ({summary['threshold_policy']})")
    print("test: " + ", ".join(f"{k}={test[k]:.4g}" for k in
                               ("auc", "prc", "precision", "recall", "tp", "fp", "fn")))
    if "card_precision_top_k" in test:
        print(f"card precision top-{test['top_k']}: {test['card_precision_top_k']:.4f}; "
              + "; ".join(f"{name} {p['first_day']} .. {p['last_day']}"
                          for name, p in summary["protocol"].items()))
    print(f"report: {summary['report']}")
    return 0
