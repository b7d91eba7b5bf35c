"""``fraudstream models list|show|promote``, ``fraudstream alerts list``, ``fraudstream counts``."""

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

    counts = sub.add_parser("counts", help="running confusion counts per model version")
    _db_flag(counts)
    counts.set_defaults(func=run_counts)


def _print(data: Any, as_json: bool, lines: list[str]) -> None:
    print(json.dumps(data, default=str) if as_json else "\n".join(lines))


def run_models(args: argparse.Namespace) -> int:
    from store import registry
    from store.db import connect

    engine = connect(args.db)
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

    rows = recent_alerts(connect(args.db), args.limit)
    _print(rows, args.json,
           [f"{r['transaction_id']:<24} v{r['model_version']} score={r['score']:.4f} "
            f"amount={r['amount']:.2f} label={r['is_fraud'] if r['is_fraud'] is not None else '-'}"
            for r in rows] or ["no alerts"])
    return 0


def run_counts(args: argparse.Namespace) -> int:
    from store.db import connect
    from store.queries import counts

    rows = counts(connect(args.db))

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    _print(rows, args.json,
           [f"v{r['model_version']}: scored={r['scored']} tp={r['tp']} fp={r['fp']} tn={r['tn']} "
            f"fn={r['fn']} unlabelled={r['unlabelled']} precision={pct(r['precision'])} "
            f"recall={pct(r['recall'])}" for r in rows] or ["nothing scored yet"])
    return 0
