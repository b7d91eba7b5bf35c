"""``fraudstream kafka up|down|status`` and ``fraudstream replay``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``kafka`` and ``replay`` subcommands to the ``fraudstream`` dispatcher."""
    from producer.broker import BOOTSTRAP_HELP

    kafka = subparsers.add_parser(
        "kafka", help="run a local single-node Apache Kafka broker",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Run a genuine single-node Apache Kafka (KRaft) broker on 127.0.0.1, "
                    "from Maven Central jars (needs Java 17+, and Maven on first use).")
    kafka.add_argument("action", choices=("up", "down", "status"),
                       help="up: start the broker (and wait until it answers); down: stop it; "
                            "status: is it answering (exit 1 if not)")
    kafka.add_argument("--data-dir", help="broker state (default: $FRAUDSTREAM_HOME/kafka)")
    kafka.add_argument("--port", type=int,
                       help="client port (default: the recorded one, else 9092); "
                            "the controller uses port+1 or any free port")
    kafka.set_defaults(func=kafka_command)

    replay = subparsers.add_parser(
        "replay", help="replay creditcard.csv onto Kafka as transaction events",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Stream the rows of a creditcard.csv-shaped file (a path, .gz, or http(s) "
                    "URL) to a Kafka topic as transaction.v1 JSON events keyed by transaction_id.")
    replay.add_argument("--csv", required=True, metavar="PATH_OR_URL",
                        help="creditcard.csv-shaped data: Time, V1..V28, Amount, Class columns "
                             "(a path, .gz, or http(s) URL)")
    replay.add_argument("--bootstrap-servers", metavar="HOST:PORT", help=BOOTSTRAP_HELP)
    replay.add_argument("--topic", default="transactions",
                        help="topic the transaction.v1 events are written to")
    replay.add_argument("--partitions", type=int, default=3,
                        help="partitions if the topic has to be created")
    pacing = replay.add_mutually_exclusive_group()
    pacing.add_argument("--rate", type=float, metavar="TPS", help="fixed events per second")
    pacing.add_argument("--speedup", type=float, metavar="X",
                        help="follow the Time column, X times faster than real time")
    replay.add_argument("--limit", type=int, help="replay at most N data rows (after --skip)")
    replay.add_argument("--skip", type=int, default=0, help="skip the first N data rows")
    replay.add_argument(
        "--labels", metavar="inline|delayed:DURATION|none",
        help="how the truth (Class) is sent: 'inline' (default) as is_fraud in each event; "
             "'delayed:DURATION' (e.g. delayed:48h, 90m, 3600s, 2d) as a label.v1 event per "
             "fraud row on --labels-topic once DURATION of dataset time has passed; 'none'")
    replay.add_argument("--labels-topic", default="labels",
                        help="topic of delayed label events (3 partitions if created)")
    replay.add_argument("--no-labels", action="store_true",
                        help="deprecated: same as --labels none")
    replay.add_argument("--delivery-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="an event not acknowledged within this time (e.g. while the broker "
                             "is down) counts as failed; the summary says where to resume")
    replay.add_argument("--shift", metavar="FEATURE=DELTA[,...]",
                        help="drift simulation: add DELTA to that raw feature of every event "
                             "(e.g. v14=+3,amount=-5; features v1..v28, amount; amount floored "
                             "at 0)")
    replay.add_argument("--json", action="store_true", help="print one JSON summary object")
    replay.set_defaults(func=replay_command)


def kafka_command(args: argparse.Namespace) -> int:
    from producer.broker import LocalBroker

    broker = LocalBroker(args.data_dir, port=args.port)
    if args.action == "up":
        print(broker.up())
        return 0
    if args.action == "down":
        pid = broker.pid()
        broker.down()
        print(f"kafka: stopped (pid {pid})" if pid else "kafka: not running")
        return 0
    if broker.is_ready():
        pid = broker.pid()
        owner = f" (pid {pid}, data {broker.data_dir})" if pid else ""
        print(f"kafka: up at {broker.bootstrap}{owner}")
        return 0
    print(f"kafka: not answering at {broker.bootstrap}")
    return 1


def replay_command(args: argparse.Namespace) -> int:
    """Run the replay; print its summary (also when events failed); exit 1 if any failed."""
    from producer.broker import bootstrap_servers
    from producer.replay import replay
    from schemas.errors import FraudstreamError

    labels = args.labels or "inline"
    if args.no_labels:
        if args.labels not in (None, "none"):
            raise FraudstreamError(f"--no-labels conflicts with --labels {args.labels}")
        print("fraudstream: warning: --no-labels is deprecated; use --labels none",
              file=sys.stderr)
        labels = "none"
    summary = replay(
        args.csv, bootstrap=bootstrap_servers(args.bootstrap_servers), topic=args.topic,
        partitions=args.partitions, rate=args.rate, speedup=args.speedup, limit=args.limit,
        skip=args.skip, labels=labels, labels_topic=args.labels_topic,
        delivery_timeout_s=args.delivery_timeout, progress=sys.stderr.isatty(),
        shift=args.shift)
    if args.json:
        print(json.dumps(asdict(summary)), flush=True)
    else:
        print(summary.human(), flush=True)
    return 0 if summary.failed == 0 else 1
