"""``fraudstream models list|show|promote``, ``alerts list``, ``counts``, ``store prune``."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _db_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy URL (default: $FRAUDSTREAM_DB_URL or SQLite)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="the model registry")
    msub = models.add_subparsers(dest="models_command", required=True)
    for name, helptext in (("list", "all registered versions"), ("show", "one version")):
        p = msub.add_parser(name, help=helptext)
        if name == "show":
            p.add_argument("version", nargs="?", default="production")
        _db_flag(p)
        p.set_defaults(func=run_models)
    promote = msub.add_parser("promote", help="make a version the production model")
    promote.add_argument("version", type=int)
    _db_flag(promote)
    promote.set_defaults(func=run_models)

    alerts = sub.add_parser("alerts", help="flagged transactions")
    asub = alerts.add_subparsers(dest="alerts_command", required=True)
    alist = asub.add_parser("list", help="top alerts by score")
    alist.add_argument("--limit", type=int, default=20)
    _db_flag(alist)
    alist.set_defaults(func=run_alerts)

    counts = sub.add_parser(
        "counts", help="confusion counts per model version, from decisions and labels",
        description="tp/fp/tn/fn per model version over labelled decisions plus mature "
                    "unlabelled ones (counted as genuine); 'pending' = unlabelled, not yet mature. "
                    "The clock is the latest event time decided.")
    counts.add_argument("--mature-after", default="0s", metavar="DURATION",
                        help="label window: unlabelled decisions older than this count as "
                             "genuine (e.g. 48h, 30d; default 0s = every unlabelled decision)")
    counts.add_argument("--by", choices=("version", "day"), default="version",
                        help="'day' splits each version by event-time day (cohorts)")
    _db_flag(counts)
    counts.set_defaults(func=run_counts)

    store = sub.add_parser("store", help="database maintenance")
    ssub = store.add_subparsers(dest="store_command", required=True)
    prune = ssub.add_parser("prune", help="delete decisions and labels older than a date")
    prune.add_argument("--before", required=True, metavar="DATE",
                       help="ISO date or timestamp (UTC unless it says otherwise), "
                            "e.g. 2013-09-02")
    _db_flag(prune)
    prune.set_defaults(func=run_prune)


def _print(data: Any, as_json: bool, lines: list[str]) -> None:
    print(json.dumps(data, default=str) if as_json else "\n".join(lines))


def run_models(args: argparse.Namespace) -> int:
    from store import registry
    from store.db import connect

    engine = connect(args.db, create=False)
    if args.models_command == "list":
        records = registry.list_versions(engine)
        _print([r.summary() for r in records], args.json,
               [f"v{r.version:<4} {r.stage:<10} {r.strategy:<10} threshold={r.threshold:.4f} "
                f"test_auc={r.metrics['test']['threshold']['auc']:.4f} "
                f"{r.created_at:%Y-%m-%d %H:%M}"
                for r in records] or ["no models registered"])
        return 0
    if args.models_command == "promote":
        record = registry.promote(engine, args.version)
    else:
        record = registry.get(engine, args.version)
    data = {**record.summary(), "metrics": record.metrics, "data_sha256": record.data_sha256,
            "manifest_sha256": record.manifest_sha256}
    _print(data, args.json, [json.dumps(data, indent=2, default=str)])
    return 0


def run_alerts(args: argparse.Namespace) -> int:
    from store.db import connect
    from store.queries import recent_alerts

    rows = recent_alerts(connect(args.db, create=False), args.limit)
    _print(rows, args.json,
           [f"{r['transaction_id']:<24} v{r['model_version']} score={r['score']:.4f} "
            f"amount={r['amount']:.2f} label={r['label'] or '-'}"
            f"{' (' + r['label_source'] + ')' if r['label_source'] else ''}"
            for r in rows] or ["no alerts"])
    return 0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def run_counts(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from schemas.durations import parse_duration
    from store.counts import matured_counts
    from store.db import connect

    window = timedelta(seconds=parse_duration(args.mature_after, "--mature-after"))
    report = matured_counts(connect(args.db, create=False), window, by_day=args.by == "day")
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
        return 0
    if not report.rows:
        print("nothing scored yet")
        return 0
    print(f"as of {report.as_of:%Y-%m-%d %H:%M:%S} (latest event decided); unlabelled decisions "
          f"older than {args.mature_after} count as genuine")
    for r in report.rows:
        day = f" {r.day}" if r.day else ""
        print(f"v{r.model_version}{day}: decisions={r.decisions} tp={r.tp} fp={r.fp} tn={r.tn} "
              f"fn={r.fn} pending={r.pending} precision={_fmt(r.precision)} "
              f"recall={_fmt(r.recall)} fraud-amount-caught={_fmt(r.amount_caught)}")
    print(f"orphan labels (transaction never scored): {report.orphans}")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from schemas.errors import FraudstreamError
    from store.db import connect
    from store.queries import prune

    try:
        before = datetime.fromisoformat(args.before)
    except ValueError as exc:
        raise FraudstreamError(f"--before: not an ISO date or timestamp: {args.before!r}") from exc
    before = before.replace(tzinfo=UTC) if before.tzinfo is None else before.astimezone(UTC)
    pruned = prune(connect(args.db, create=False), before)
    _print({"before": before.isoformat(), "decisions": pruned.decisions,
            "labels": pruned.labels}, args.json,
           [f"pruned {pruned.decisions} decisions and {pruned.labels} labels older than "
            f"{before.isoformat()}"])
    return 0
