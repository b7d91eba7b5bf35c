"""``fraudstream labels consume``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from stream.cli import add_consumer_args


def register(sub: Any) -> None:
    labels = sub.add_parser("labels", help="the label stream (delayed truth)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    lsub = labels.add_subparsers(dest="labels_command", required=True)
    consume = lsub.add_parser(
        "consume", help="write label events to the store (a consumer-group member)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_consumer_args(consume, topic="labels", what="label.v1", group="fraudstream-labels",
                      group_help="consumer group", batch_size=5000, dlq_topic="labels.dlq")
    consume.set_defaults(func=run_consume)


def run_consume(args: argparse.Namespace) -> int:
    from labels.service import consume_labels
    from metrics import ConsumerMetrics, start_from_cli
    from store.db import connect
    from stream import ConsumerConfig, require_drained
    from stream.cli import check_consumer_args, max_future_skew_s, reachable_broker, ready_topics

    check_consumer_args(args)
    bootstrap = reachable_broker(args.bootstrap_servers)
    engine = connect(args.db)
    ready_topics(bootstrap, {args.topic: 3, args.dlq_topic: 1})
    config = ConsumerConfig(bootstrap=bootstrap, topic=args.topic, group_id=args.group_id,
                            dlq_topic=args.dlq_topic, client_id="fraudstream-labels",
                            batch_size=args.batch_size, until_idle=args.until_idle,
                            drain_wait_s=args.drain_wait, max_messages=args.max_messages)
    metrics = start_from_cli(args.metrics_port, args.metrics_host,
                             lambda: ConsumerMetrics("labels"))
    s = consume_labels(config, engine, metrics, max_future_skew_s(args))
    summary = {"consumed": s.consumed, "labels": s.stats["labels"], "dlq": s.dlq,
               "isolated": s.isolated, "conflicts": s.conflicts, "topic_resets": s.topic_resets,
               "recreated": s.recreated, "seconds": round(s.seconds, 3),
               "busy_seconds": round(s.busy_seconds, 3), "rate": round(s.rate, 1),
               "left": [asdict(x) for x in s.left]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"consumed {s.consumed} label events: stored {s.stats['labels']} (duplicates "
              f"ignored), dead-lettered {s.dlq} in {s.seconds:.1f}s "
              f"({s.rate:,.0f} labels/s while busy)", flush=True)
    require_drained(s.left, args.group_id, args.drain_wait)
    return 0
