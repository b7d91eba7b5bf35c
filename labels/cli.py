"""``fraudstream labels consume``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    labels = sub.add_parser("labels", help="the label stream (delayed truth)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    lsub = labels.add_subparsers(dest="labels_command", required=True)
    consume = lsub.add_parser(
        "consume", help="write label events to the store (a consumer-group member)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    consume.add_argument("--bootstrap-servers", help="H:P (default: $KAFKA_BOOTSTRAP_SERVERS)")
    consume.add_argument("--topic", default="labels", help="topic of label.v1 events")
    consume.add_argument("--group-id", default="fraudstream-labels", help="consumer group")
    consume.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    consume.add_argument("--batch-size", type=int, default=5000, help="max labels per batch")
    consume.add_argument("--until-idle", type=float, metavar="SECONDS",
                         help="exit after this many seconds without new labels")
    consume.add_argument("--max-messages", type=int, help="exit after consuming this many")
    consume.add_argument("--dlq-topic", default="labels.dlq",
                         help="where malformed label events go, with the reason in a header")
    consume.add_argument("--json", action="store_true", help="print one JSON summary object")
    consume.add_argument("--metrics-port", type=int, metavar="PORT",
                         help="serve Prometheus /metrics on this port (default: "
                              "$FRAUDSTREAM_METRICS_PORT, else no metrics)")
    consume.add_argument("--metrics-host", metavar="ADDR",
                         help="address /metrics listens on (default: $FRAUDSTREAM_METRICS_HOST "
                              "or 127.0.0.1)")
    consume.set_defaults(func=run_consume)


def run_consume(args: argparse.Namespace) -> int:
    from labels.service import consume_labels
    from metrics import ConsumerMetrics, start_from_cli
    from producer.broker import bootstrap_servers, tcp_reachable, wait_ready
    from producer.topics import ensure_topics
    from schemas.errors import FraudstreamError
    from store.db import connect
    from stream import ConsumerConfig

    if args.batch_size < 1:
        raise FraudstreamError("--batch-size must be >= 1")
    if args.max_messages is not None and args.max_messages < 1:
        raise FraudstreamError("--max-messages must be >= 1")
    bootstrap = bootstrap_servers(args.bootstrap_servers)
    problem = tcp_reachable(bootstrap)
    if problem is not None:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap} ({problem})")
    engine = connect(args.db)
    wait_ready(bootstrap, timeout=30)
    ensure_topics(bootstrap, {args.topic: 3, args.dlq_topic: 1})
    config = ConsumerConfig(bootstrap=bootstrap, topic=args.topic, group_id=args.group_id,
                            dlq_topic=args.dlq_topic, client_id="fraudstream-labels",
                            batch_size=args.batch_size, until_idle=args.until_idle,
                            max_messages=args.max_messages)
    metrics = start_from_cli(args.metrics_port, args.metrics_host,
                             lambda: ConsumerMetrics("labels"))
    s = consume_labels(config, engine, metrics)
    summary = {"consumed": s.consumed, "labels": s.stats["labels"], "dlq": s.dlq,
               "isolated": s.isolated, "conflicts": s.conflicts,
               "topic_resets": s.topic_resets, "seconds": round(s.seconds, 3),
               "busy_seconds": round(s.busy_seconds, 3), "rate": round(s.rate, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"consumed {s.consumed} label events: stored {s.stats['labels']} (duplicates "
              f"ignored), dead-lettered {s.dlq} in {s.seconds:.1f}s "
              f"({s.rate:,.0f} labels/s while busy)")
    return 0
