"""``fraudstream score``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

#: The production scoring group: only the production model may score in it.
PRODUCTION_GROUP = "fraudstream-scorer"


def register(sub: Any) -> None:
    score = sub.add_parser("score", help="score the transaction stream (a consumer-group member)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    score.add_argument("--bootstrap-servers", help="H:P (default: $KAFKA_BOOTSTRAP_SERVERS)")
    score.add_argument("--topic", default="transactions", help="topic of transaction.v1 events")
    score.add_argument("--group-id", default=PRODUCTION_GROUP,
                       help="consumer group; a model other than production needs its own group")
    score.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    score.add_argument("--model-version", default="production",
                       help="the registered model to score with: a number or 'production'")
    score.add_argument("--batch-size", type=int, default=2000, help="max events per micro-batch")
    score.add_argument("--until-idle", type=float, metavar="SECONDS",
                       help="exit after this many seconds without new events")
    score.add_argument("--max-messages", type=int, help="exit after consuming this many events")
    score.add_argument("--alerts-topic", default="alerts",
                       help="topic the alert.v1 events of flagged transactions are published to")
    score.add_argument("--dlq-topic", default="transactions.dlq",
                       help="dead-letter topic for malformed events (reason in a header)")
    score.add_argument("--json", action="store_true", help="print one JSON summary object")
    score.add_argument("--metrics-port", type=int, metavar="PORT",
                       help="serve Prometheus /metrics on this port (default: "
                            "$FRAUDSTREAM_METRICS_PORT, else no metrics)")
    score.add_argument("--metrics-host", metavar="ADDR",
                       help="address /metrics listens on (default: $FRAUDSTREAM_METRICS_HOST "
                            "or 127.0.0.1)")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from metrics import ScorerMetrics, start_from_cli, validation_alert_rate
    from producer.broker import bootstrap_servers, tcp_reachable, wait_ready
    from producer.topics import ensure_topics
    from schemas.errors import FraudstreamError
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.db import connect

    if args.batch_size < 1:
        raise FraudstreamError("--batch-size must be >= 1")
    if args.max_messages is not None and args.max_messages < 1:
        raise FraudstreamError("--max-messages must be >= 1")
    if args.until_idle is not None and args.until_idle <= 0:
        raise FraudstreamError("--until-idle must be > 0")
    bootstrap = bootstrap_servers(args.bootstrap_servers)
    problem = tcp_reachable(bootstrap)
    if problem is not None:
        raise FraudstreamError(f"cannot reach Kafka at {bootstrap} ({problem})")
    engine = connect(args.db)
    model = load_model(engine, args.model_version)
    if args.model_version != "production" and args.group_id == PRODUCTION_GROUP:
        from store import registry

        if registry.get(engine, "production").version != model.version:
            raise FraudstreamError(
                f"model {model.version} is not the production model: it may not join the "
                f"production group '{PRODUCTION_GROUP}' (its alerts would mix with "
                f"production's); give it its own --group-id, or promote it first")
    wait_ready(bootstrap, timeout=30)
    ensure_topics(bootstrap, {args.topic: 3, args.alerts_topic: 3, args.dlq_topic: 1})
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
