"""``fraudstream drift``: the drift report of the transaction stream against a model's reference.

A CLI run is its own process, so it cannot read the live scorer's window (that one is exported as
``fraudstream_feature_psi``/``fraudstream_score_psi`` on the scorer's ``/metrics``). Decisions in
the database do not keep the features either. So the report reads the last ``--last`` events back
from the transactions topic — exactly what the scorer consumed — transforms and scores them with
the model (the production one by default) and compares them with that model's train-split
reference (:mod:`metrics.drift`); ``--window`` further keeps only the events within that much
event time of the newest one, as the scorer's window does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

DEFAULT_LAST = 20_000
PSI_ALERT = 0.2  # the FraudstreamFeatureDrift/FraudstreamScoreDrift rules' threshold
PSI_STABLE = 0.1


def register_drift(sub: Any) -> None:
    from producer.broker import BOOTSTRAP_HELP

    drift = sub.add_parser(
        "drift", help="drift report: PSI of the recent transactions vs the model's train split",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Read the last events back from the transactions topic (what the scorer "
                    "saw), and print each model input's and the score's PSI against the "
                    "model's train-split reference, top drifting features first. "
                    "PSI < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant.")
    drift.add_argument("--bootstrap-servers", help=BOOTSTRAP_HELP)
    drift.add_argument("--topic", default="transactions", help="topic of transaction.v1 events")
    drift.add_argument("--last", type=int, default=DEFAULT_LAST, metavar="N",
                       help="read back the last N events of the topic (all partitions)")
    drift.add_argument("--window", metavar="DURATION",
                       help="keep only events within this much event time of the newest one "
                            "(e.g. 1h); default: all events read back")
    drift.add_argument("--model-version", default="production",
                       help="the registered model whose reference to compare with")
    drift.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    drift.add_argument("--top", type=int, default=10, help="features listed in the text report")
    drift.add_argument("--json", action="store_true", help="print one JSON report object")
    drift.set_defaults(func=run_drift)


def read_last(bootstrap: str, topic: str, last: int, timeout_s: float = 60.0) -> list[Any]:
    """The last ``last`` records of ``topic`` (:func:`stream.readback.read_back`)."""
    from stream.readback import read_back

    return read_back(bootstrap, topic, last, timeout_s=timeout_s, client_id="fraudstream-drift")


def drift_report(records: list[Any], model: Any, window_s: float | None = None) -> dict[str, Any]:
    """The report of ``records`` (transaction.v1 Kafka records) against ``model.drift``."""
    import numpy as np

    from schemas.times import Horizon
    from scorer.decode import decode_batch

    batch = decode_batch(records, Horizon.from_wall_clock())  # what the scorer would accept
    raw, times = batch.raw_matrix(), batch.column("time_s")
    if window_s is not None and len(times):
        keep = times >= times.max() - window_s
        raw, times = raw[keep], times[keep]
    inputs = model.contract.transform(raw) if len(raw) else np.zeros((0, raw.shape[1]))
    scores = model.net.score(inputs) if len(raw) else np.zeros(0)
    report = model.drift.report(inputs, scores)
    ranked = sorted(report["feature_psi"].items(), key=lambda kv: -kv[1])
    return {
        "model_version": model.version, "reference_rows": model.drift.rows,
        "events": report["events"], "dead_lettered": len(batch.dead),
        "window": {"records_read": len(records), "seconds": window_s,
                   "first_time_s": float(times.min()) if len(times) else None,
                   "last_time_s": float(times.max()) if len(times) else None},
        "score_psi": report["score_psi"], "feature_psi": report["feature_psi"],
        "top": [{"feature": name, "psi": value} for name, value in ranked],
        "drifting": [name for name, value in ranked if value > PSI_ALERT],
    }


def human(report: dict[str, Any], top: int) -> str:
    from schemas.events import event_time

    w = report["window"]
    span = ("" if w["first_time_s"] is None else
            f", event time {event_time(w['first_time_s']):%Y-%m-%d %H:%M:%S} .. "
            f"{event_time(w['last_time_s']):%Y-%m-%d %H:%M:%S}")
    lines = [f"drift of {report['events']:,} events{span} vs model {report['model_version']}'s "
             f"train split ({report['reference_rows']:,} rows); PSI > {PSI_ALERT} significant",
             f"  score PSI {report['score_psi']:.4f}"]
    for item in report["top"][:top]:
        flag = "  DRIFT" if item["psi"] > PSI_ALERT else ""
        lines.append(f"  {item['feature']:<10} {item['psi']:.4f}{flag}")
    lines.append("drifting: " + (", ".join(report["drifting"]) or "none"))
    return "\n".join(lines)


def run_drift(args: argparse.Namespace) -> int:
    from schemas.durations import parse_duration
    from schemas.errors import FraudstreamError
    from scorer.model import load_model
    from store.db import connect
    from stream.cli import reachable_broker

    if args.last < 1:
        raise FraudstreamError("--last must be >= 1")
    window_s = None if args.window is None else parse_duration(args.window, "--window")
    model = load_model(connect(args.db, create=False), args.model_version)
    if model.drift is None:
        raise FraudstreamError(
            f"model {model.version} has no drift reference (drift_reference.json: it was "
            "registered before drift detection existed); train and register it again")
    records = read_last(reachable_broker(args.bootstrap_servers), args.topic, args.last)
    if not records:
        raise FraudstreamError(f"topic '{args.topic}' holds no event")
    report = drift_report(records, model, window_s)
    print(json.dumps(report) if args.json else human(report, args.top))
    return 0
