"""The command-line flags and start-up checks every consumer-group command shares (the scorer,
the label sink): broker, topic, group, database, batch size, stopping rules, dead letters,
metrics — one definition, so the two commands cannot drift apart."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from schemas.durations import parse_duration
from schemas.errors import FraudstreamError


def add_consumer_args(parser: argparse.ArgumentParser, *, topic: str, what: str, group: str,
                      group_help: str, batch_size: int, dlq_topic: str) -> None:
    """Add the shared flags; ``what`` names the events (``transaction.v1``, ``label.v1``)."""
    from producer.broker import BOOTSTRAP_HELP

    parser.add_argument("--bootstrap-servers", help=BOOTSTRAP_HELP)
    parser.add_argument("--topic", default=topic, help=f"topic of {what} events")
    parser.add_argument("--group-id", default=group, help=group_help)
    parser.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="max events per micro-batch")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit once drained: after this many seconds without new events, "
                             "when every partition of the topic is committed up to its end")
    parser.add_argument("--drain-wait", type=float, default=60.0, metavar="SECONDS",
                        help="with --until-idle: how long to wait for events left on partitions "
                             "other members hold (a killed member keeps them until its 45 s "
                             "session expires) before giving up with exit status 3")
    parser.add_argument("--max-messages", type=int, help="exit after consuming this many events")
    parser.add_argument("--dlq-topic", default=dlq_topic,
                        help="dead-letter topic for malformed events (reason in a header)")
    parser.add_argument("--max-future-skew", default="1h", metavar="DURATION",
                        help="an event dated more than this ahead of this machine's clock is "
                             "dead-lettered with the reason (a broken clock upstream would "
                             "otherwise move the stream's clock), e.g. 1h, 10m, 2d")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus /metrics on this port (default: "
                             "$FRAUDSTREAM_METRICS_PORT, else no metrics)")
    parser.add_argument("--metrics-host", metavar="ADDR",
                        help="address /metrics listens on (default: $FRAUDSTREAM_METRICS_HOST "
                             "or 127.0.0.1)")


def check_consumer_args(args: argparse.Namespace) -> None:
    """One-line errors for values that would make the consumer do nothing or never stop."""
    if args.batch_size < 1:
        raise FraudstreamError("--batch-size must be >= 1")
    if args.max_messages is not None and args.max_messages < 1:
        raise FraudstreamError("--max-messages must be >= 1")
    if args.until_idle is not None and args.until_idle <= 0:
        raise FraudstreamError("--until-idle must be > 0")
    if args.drain_wait < 0:
        raise FraudstreamError("--drain-wait must be >= 0")
    max_future_skew_s(args)


def max_future_skew_s(args: argparse.Namespace) -> float:
    """``--max-future-skew`` in seconds (a one-line error for a bad duration)."""
    return parse_duration(args.max_future_skew, "--max-future-skew")


def reachable_broker(flag: str | None) -> str:
    """The bootstrap address (flag > env > default), failing fast when nothing answers there."""
    from producer.broker import bootstrap_servers, tcp_reachable

    bootstrap = bootstrap_servers(flag)
    problem = tcp_reachable(bootstrap)
    if problem is not None:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap} ({problem})")
    return bootstrap


def ready_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    """Wait for the broker, then create any missing topic (name -> partitions)."""
    from producer.broker import wait_ready
    from producer.topics import ensure_topics

    wait_ready(bootstrap, timeout=30)
    ensure_topics(bootstrap, topics)
