"""``fraudstream retrain``: one retraining round (:mod:`trainer.retrain`), or one every
``--every`` until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from trainer import keyed_cli

log = logging.getLogger(__name__)

CRON_EXAMPLE = (
    "0 */6 * * *  cd /srv/fraudstream && FRAUDSTREAM_DB_URL=... .venv/bin/fraudstream retrain "
    "--days 7 --mature-after 48h --promote auto --json "
    ">> retrain.log 2>&1"
)


def register(sub: Any) -> None:
    from models import FAMILIES
    from producer.broker import BOOTSTRAP_HELP
    from store.settings import add_mature_after
    from trainer import gate, oot
    from trainer.model import STRATEGIES
    from trainer.threshold import DEFAULT_POLICY

    p = sub.add_parser(
        "retrain",
        help="retrain from what the system saw; gate candidates against production",
        description="Read the transaction events back from Kafka (or --csv), window them by "
        "event time, keep those older than --mature-after and label them from the label store "
        "(latest label wins; unlabelled ones count as genuine; younger events are left out, "
        "labelled or not), split out of "
        "time (train oldest, validate next, test most recent), train and register each "
        "--family as a candidate, and gate each against the production model on the test "
        "slice. Every gate decision is recorded (`fraudstream models show V`). The first model "
        "ever registered becomes production (there is nothing to compare it with).",
        epilog="Scheduling: `--every 6h` runs a round, sleeps, repeats; SIGTERM or Ctrl-C stops "
        "it between rounds (a round in progress finishes first). Or schedule single rounds "
        f"with cron instead of --every: {CRON_EXAMPLE}",
    )
    src = p.add_argument_group("data")
    src.add_argument(
        "--csv",
        metavar="PATH_OR_URL",
        help="train on a creditcard.csv-shaped file instead of the stream "
        "(labels from Class; still split out of time by Time), or on a keyed CSV (the "
        "handbook's protocol and behaviour features; see the keyed-data flags)",
    )
    src.add_argument(
        "--bootstrap-servers",
        metavar="H:P",
        help=BOOTSTRAP_HELP,
    )
    src.add_argument("--topic", default="transactions",
                     help="topic of transaction events (keyed transaction.v2 events: a keyed "
                     "round, behaviour features and the protocol)")
    src.add_argument(
        "--since",
        metavar="TIME",
        help="only events at or after this event time (ISO, UTC unless it says "
        "otherwise), e.g. 2013-09-01T06:00; default: the oldest held",
    )
    src.add_argument(
        "--until",
        metavar="TIME",
        help="only events before this event time (ISO); default: the newest",
    )
    src.add_argument(
        "--days",
        type=float,
        metavar="N",
        help="only the last N days of event time, ending at the newest event "
        "(instead of --since/--until)",
    )
    add_mature_after(src)  # events younger than the window are left out, labelled or not
    fit = p.add_argument_group("training")
    fit.add_argument(
        "--family",
        action="append",
        metavar="NAME",
        help=f"model family to train, repeatable or comma-separated "
        f"({', '.join(FAMILIES)}); default: every family (the gate chooses among them)",
    )
    fit.add_argument(
        "--val-fraction",
        type=float,
        default=oot.DEFAULT_VAL_FRACTION,
        help="share of rows (after train, by event time) for validation",
    )
    fit.add_argument(
        "--test-fraction",
        type=float,
        default=oot.DEFAULT_TEST_FRACTION,
        help="share of the most recent rows for the test slice the gate uses",
    )
    fit.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="weighted",
        help="class imbalance strategy (xgboost: weighted or baseline)",
    )
    fit.add_argument("--epochs", type=int, default=100, help="maximum epochs (dense)")
    fit.add_argument("--seed", type=int, default=42, help="random seed")
    fit.add_argument(
        "--threshold-policy",
        default=DEFAULT_POLICY,
        help="as for train (chosen on the validation split)",
    )
    g = p.add_argument_group("gate")
    g.add_argument(
        "--promote",
        choices=("auto", "never"),
        default="auto",
        help="auto: promote the best candidate that passes the gate; never: only "
        "record the gate's verdicts",
    )
    g.add_argument(
        "--gate-auprc-gain",
        type=float,
        default=gate.DEFAULT_MIN_AUPRC_GAIN,
        help="candidate AUPRC must reach production's plus this",
    )
    g.add_argument(
        "--gate-recall-drop",
        type=float,
        default=gate.DEFAULT_MAX_RECALL_DROP,
        help="candidate recall at production's precision may be this much lower than production's",
    )
    g.add_argument(
        "--gate-min-frauds",
        type=int,
        default=gate.DEFAULT_MIN_FRAUDS,
        metavar="N",
        help="a test slice with fewer frauds judges nothing: every candidate is held",
    )
    g.add_argument(
        "--gate-confidence",
        type=float,
        default=gate.DEFAULT_CONFIDENCE,
        metavar="C",
        help="the AUPRC gain must clear --gate-auprc-gain also at the lower bound of this "
        "two-sided bootstrap interval (seeded: the same slice gives the same verdict)",
    )
    g.add_argument(
        "--negative-weight",
        type=float,
        default=1.0,
        metavar="W",
        help="weight of each genuine row in the gate's AUPRC and precision: for data whose "
        "genuine rows are a subsample (W = genuine rows in the population / in the data), so "
        "the gate judges the population's figures",
    )
    p.add_argument(
        "--every",
        metavar="DURATION",
        help="repeat: a round every DURATION (e.g. 6h) until SIGTERM; default: once",
    )
    p.add_argument(
        "--db", metavar="URL", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON summary object per round")
    keyed_cli.add_flags(p)
    p.set_defaults(func=run_retrain)


def options(args: argparse.Namespace) -> Any:
    """The :class:`trainer.retrain.RetrainOptions` of the flags (one-line errors)."""
    from schemas.durations import parse_time
    from store.settings import maturity
    from trainer.gate import GateRule
    from trainer.retrain import RETRAIN_FAMILIES, RetrainOptions

    families = tuple(
        f.strip() for item in (args.family or RETRAIN_FAMILIES) for f in item.split(",")
        if f.strip()
    )
    return RetrainOptions(
        families=families,
        csv=args.csv,
        bootstrap=args.bootstrap_servers,
        topic=args.topic,
        since=parse_time("--since", args.since),
        until=parse_time("--until", args.until),
        days=args.days,
        mature_after_s=maturity(args.mature_after).window.total_seconds(),
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        strategy=args.strategy,
        epochs=args.epochs,
        seed=args.seed,
        policy=args.threshold_policy,
        promote=args.promote,
        rule=GateRule(args.gate_auprc_gain, args.gate_recall_drop, args.negative_weight,
                      min_frauds=args.gate_min_frauds, confidence=args.gate_confidence),
        db=args.db,
        keyed=keyed_cli.options(args, epochs=args.epochs, seed=args.seed,
                                policy=args.threshold_policy),
    )


def human(summary: dict[str, Any], maturity: str = "") -> list[str]:
    """The round's summary for people (``maturity``: the label window's description, shown
    beside the mature events of a stream round)."""
    if summary.get("input") == "transaction.v2":
        from trainer.keyed_retrain import human as keyed_human

        return keyed_human(summary)
    t = summary["training"]
    w, labels, split = t["window"], t["labels"], t["split"]
    lines = [
        f"retrained from {summary['source']} ({t.get('topic') or t.get('csv')}), events "
        f"{w['first_event'][:19]} .. {w['last_event'][:19]}: {t['rows']:,} rows, "
        f"{t['frauds']:,} frauds" + (" (SYNTHETIC data)" if t.get("synthetic") else ""),
        f"  mature events: {labels['fraud']:,} labelled fraud, {labels['genuine']:,} labelled "
        f"genuine, {labels['matured']:,} unlabelled (genuine); {labels['left_out']:,} too recent "
        "(left out, labelled or not)"
        + (f"; labels {maturity}" if maturity and summary["source"] == "stream" else ""),
    ]
    for name in ("train", "val", "test"):
        s = split[name]
        lines.append(
            f"  {name:<5} {s['rows']:>8,} rows {s['frauds']:>6,} frauds  "
            f"{s['start'][:19]} .. {s['end'][:19]}"
        )
    lines.append(f"gate: {summary['rule']}")
    for c in summary["candidates"]:
        gate = c["gate"]
        why = gate["reason"] if gate else "first model: no production to compare"
        lines.append(
            f"  v{c['version']} {c['family']:<8} test AUPRC {c['test']['prc']:.4f} "
            f"-> {c['outcome']} ({why})"
        )
        lines += [f"    warning: {w}" for w in (gate or {}).get("warnings", [])]
    before, after = summary["production_before"], summary["production_after"]
    lines.append(
        f"production: v{after}"
        + ("" if before == after else f" (was {'v' + str(before) if before else 'none'})")
    )
    return lines


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT set ``stop`` instead of killing the process."""

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping after the current round", signum)
        stop.set()

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, previous in saved.items():
            signal.signal(s, previous)


def run_every(interval_s: float, one_round: Callable[[], None], stop: threading.Event) -> int:
    """Run ``one_round``, wait ``interval_s`` (or until ``stop``), repeat until ``stop`` is set;
    returns the number of rounds run. A round failing with a FraudstreamError (e.g. too few
    labels yet) is logged and the schedule goes on."""
    from schemas.errors import FraudstreamError

    rounds = 0
    while not stop.is_set():
        try:
            one_round()
        except FraudstreamError as exc:
            log.error("retrain round failed: %s", exc)
        rounds += 1
        stop.wait(interval_s)
    return rounds


def run_retrain(args: argparse.Namespace) -> int:
    from schemas.durations import parse_duration
    from schemas.errors import FraudstreamError
    from store.settings import maturity
    from trainer.retrain import retrain

    opts = options(args)
    opts.check()
    mature = maturity(args.mature_after)

    def one_round() -> None:
        summary = retrain(opts)
        print(
            json.dumps({**summary, **mature.to_dict()}, default=str)
            if args.json
            else "\n".join(human(summary, mature.describe())),
            flush=True,
        )

    if args.every is None:
        one_round()
        return 0
    interval = parse_duration(args.every, "--every")
    if interval <= 0:
        raise FraudstreamError("--every must be longer than 0s")
    stop = threading.Event()
    with stop_on_signals(stop):
        rounds = run_every(interval, one_round, stop)
    log.info("retrain schedule stopped after %d round(s)", rounds)
    return 0
