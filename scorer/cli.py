"""``fraudstream score``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from stream.cli import add_consumer_args

#: The production scoring group: only the production model may score in it.
PRODUCTION_GROUP = "fraudstream-scorer"


def register(sub: Any) -> None:
    score = sub.add_parser("score", help="score the transaction stream (a consumer-group member)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_consumer_args(score, topic="transactions", what="transaction.v1",
                      group=PRODUCTION_GROUP, batch_size=2000, dlq_topic="transactions.dlq",
                      group_help="consumer group; a model other than production needs its own "
                                 "group")
    score.add_argument("--model-version", default="production",
                       help="the registered model to score with: a number or 'production'")
    score.add_argument("--alerts-topic", default="alerts",
                       help="topic the alert.v1 events of flagged transactions are published to")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from metrics import ScorerMetrics, start_from_cli, validation_alert_rate
    from schemas.errors import FraudstreamError
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.db import connect
    from stream.cli import check_consumer_args, reachable_broker, ready_topics

    check_consumer_args(args)
    bootstrap = reachable_broker(args.bootstrap_servers)
    engine = connect(args.db)
    model = load_model(engine, args.model_version)
    if args.model_version != "production" and args.group_id == PRODUCTION_GROUP:
        from store import registry

        if registry.get(engine, "production").version != model.version:
            raise FraudstreamError(
                f"model {model.version} is not the production model: it may not join the "
                f"production group '{PRODUCTION_GROUP}' (its alerts would mix with "
                f"production's); give it its own --group-id, or promote it first")
    ready_topics(bootstrap, {args.topic: 3, args.alerts_topic: 3, args.dlq_topic: 1})
    config = ScoreConfig(bootstrap=bootstrap, topic=args.topic, group_id=args.group_id,
                         batch_size=args.batch_size, until_idle=args.until_idle,
                         max_messages=args.max_messages, alerts_topic=args.alerts_topic,
                         dlq_topic=args.dlq_topic)
    logging.getLogger(__name__).info("scoring %s with model %d (threshold %.4f) for group %s",
                                     args.topic, model.version, model.threshold, args.group_id)
    metrics = start_from_cli(args.metrics_port, args.metrics_host, ScorerMetrics)
    expected = None
    if metrics is not None:
        from store import registry

        expected = validation_alert_rate(registry.get(engine, model.version).metrics)
    summary = Scorer(config, engine, model, metrics, expected).run()
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(f"consumed {summary.consumed}, scored {summary.scored}, flagged {summary.flagged}, "
              f"dead-lettered {summary.dlq} in {summary.seconds:.1f}s "
              f"({summary.rate:,.0f} events/s while busy)")
    return 0
