"""``fraudstream score``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from scorer.drift_cli import register_drift
from scorer.reload import PRODUCTION_GROUP
from stream.cli import add_consumer_args


def register(sub: Any) -> None:
    score = sub.add_parser("score", help="score the transaction stream (a consumer-group member)",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_consumer_args(score, topic="transactions", what="transaction.v1",
                      group=PRODUCTION_GROUP, batch_size=2000, dlq_topic="transactions.dlq",
                      group_help="consumer group; a model other than production needs its own "
                                 "group")
    score.add_argument("--model-version", default="production",
                       help="the registered model to score with: a number or 'production'")
    score.add_argument("--reload-check", type=float, default=5.0, metavar="SECONDS",
                       help="with --model-version production: read the registry's production "
                            "version this often and switch to a newly promoted model (or a "
                            "rollback) between batches; 0 turns hot reload off. In the "
                            f"production group '{PRODUCTION_GROUP}' production is read at every "
                            "batch and commits are fenced on it: a member switches before "
                            "scoring the batch, or stops (exit 2) when it does not reload")
    score.add_argument("--shadow", metavar="candidate|V",
                       help="also score every batch with this model (the newest candidate, or a "
                            "version); its decisions are logged under its version, never "
                            "alerted")
    score.add_argument("--log-features", action="store_true",
                       help="keyed model: store the feature vector with every decision (it is "
                            "always stored with an alert)")
    score.add_argument("--allowed-lateness", default="1h", metavar="DURATION",
                       help="keyed model: an event up to this much earlier than its partition's "
                            "latest is scored as of its own time; earlier ones are dead letters "
                            "(must be shorter than the model's terminal delay)")
    score.add_argument("--label-sink", metavar="GROUP",
                       help="keyed model: score an event only once the label sink GROUP (e.g. "
                            "fraudstream-labels) has stored every label observed by its time, "
                            "so a lagging label sink delays decisions, not a label's effect "
                            "(default: score with the labels in the store)")
    score.add_argument("--labels-topic", default="labels",
                       help="with --label-sink: the topic that label sink consumes")
    score.add_argument("--alerts-topic", default="alerts",
                       help="topic the alert.v1 events of flagged transactions are published to")
    score.add_argument("--drift-window", default="1h", metavar="DURATION",
                       help="with metrics on: event-time window of the exported drift PSI "
                            "(fraudstream_feature_psi, fraudstream_score_psi), e.g. 1h, 30m")
    score.set_defaults(func=run_score)
    register_drift(sub)


def parse_lateness(text: str) -> float:
    from schemas.durations import parse_duration
    from schemas.errors import FraudstreamError

    seconds = parse_duration(text, "--allowed-lateness")
    if seconds < 0:
        raise FraudstreamError("--allowed-lateness must be >= 0")
    return seconds


def run_score(args: argparse.Namespace) -> int:
    from metrics import ScorerMetrics, start_from_cli, validation_alert_rate
    from schemas.errors import FraudstreamError
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.db import connect
    from stream import require_drained
    from stream.cli import check_consumer_args, max_future_skew_s, reachable_broker, ready_topics

    check_consumer_args(args)
    if args.reload_check < 0:
        raise FraudstreamError("--reload-check must be >= 0 (0: no hot reload)")
    bootstrap = reachable_broker(args.bootstrap_servers)
    engine = connect(args.db)
    model = load_model(engine, args.model_version, keyed=True)
    shadow = None
    if args.shadow is not None:
        from scorer.shadow import shadow_version

        shadow = load_model(engine, shadow_version(engine, args.shadow, model.version),
                            keyed=True)
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
                         drain_wait_s=args.drain_wait, max_messages=args.max_messages,
                         alerts_topic=args.alerts_topic, dlq_topic=args.dlq_topic,
                         max_future_skew_s=max_future_skew_s(args),
                         log_features=args.log_features,
                         allowed_lateness_s=parse_lateness(args.allowed_lateness),
                         label_sink_group=args.label_sink, labels_topic=args.labels_topic)
    logging.getLogger(__name__).info("scoring %s with model %d (threshold %.4f) for group %s",
                                     args.topic, model.version, model.threshold, args.group_id)
    from functools import partial

    from schemas.durations import parse_duration

    drift_window = parse_duration(args.drift_window, "--drift-window")
    if not drift_window > 0:
        raise FraudstreamError("--drift-window must be > 0")
    metrics = start_from_cli(args.metrics_port, args.metrics_host,
                             partial(ScorerMetrics, drift_window_s=drift_window))
    if metrics is not None and model.drift is None:
        logging.getLogger(__name__).warning(
            "model %d has no drift reference (registered before drift_reference.json existed):"
            " no drift PSI is exported; train and register it again for drift", model.version)
    expected = None
    if metrics is not None:
        from store import registry

        expected = validation_alert_rate(registry.get(engine, model.version).metrics)
    # Only a scorer that follows the production stage reloads; an explicit version never does.
    reload_check = (args.reload_check or None) if args.model_version == "production" else None
    summary = Scorer(config, engine, model, metrics, expected, reload_check, shadow).run()
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(f"consumed {summary.consumed}, scored {summary.scored}, flagged {summary.flagged}, "
              f"dead-lettered {summary.dlq} in {summary.seconds:.1f}s "
              f"({summary.rate:,.0f} events/s while busy)"
              + (f"; {summary.reloads} model reload(s), now model {summary.model_version}"
                 if summary.reloads else ""), flush=True)
    require_drained(summary.left, args.group_id, args.drain_wait)
    return 0
