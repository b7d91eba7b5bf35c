"""The keyed-data flags of ``train`` and ``retrain`` (the protocol and the behaviour features):
one place for both commands."""

from __future__ import annotations

import argparse
from typing import Any


def add_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "keyed data (a CSV with TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, "
        "TX_AMOUNT, TX_FRAUD): the handbook's protocol and behaviour features")
    group.add_argument("--train-days", type=int, default=7, help="days of the training period")
    group.add_argument("--delay-days", type=int, default=7,
                       help="days of the delay period left out between training and test; also "
                            "the feedback delay D of the terminal features (frauds known D "
                            "days after)")
    group.add_argument("--test-days", type=int, default=7, help="days of the test period")
    group.add_argument("--train-start", metavar="DATE",
                       help="first day of the training period (default: the test period ends "
                            "with the data's last day)")
    group.add_argument("--top-k", type=int, default=100,
                       help="k of card precision top-k (the investigators' daily capacity)")
    group.add_argument("--no-behaviour", action="store_true",
                       help="amount and time features only (weekend, night): the baseline")


def options(args: argparse.Namespace, *, epochs: int, seed: int, policy: str) -> Any:
    """The :class:`trainer.keyed_pipeline.KeyedOptions` of parsed flags."""
    from datetime import date

    from schemas.errors import FraudstreamError
    from trainer.keyed_pipeline import KeyedOptions
    from trainer.keyed_protocol import Protocol

    try:
        start = date.fromisoformat(args.train_start) if args.train_start else None
    except ValueError as exc:
        raise FraudstreamError(f"--train-start: not an ISO date: {args.train_start!r}") from exc
    if args.top_k < 1:
        raise FraudstreamError(f"--top-k must be >= 1, got {args.top_k}")
    protocol = Protocol(train_days=args.train_days, delay_days=args.delay_days,
                        test_days=args.test_days, train_start=start)
    protocol.check()
    return KeyedOptions(protocol=protocol, behaviour=not args.no_behaviour, top_k=args.top_k,
                        epochs=epochs, seed=seed, policy=policy)
