"""``fraudstream models list|show|promote``, ``alerts list``, ``counts``, ``store prune``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime
from typing import Any

_DEFAULTS = argparse.ArgumentDefaultsHelpFormatter


def _db_flag(parser: argparse.ArgumentParser, *, json_help: str = "machine-readable output "
             "(one JSON document)") -> None:
    parser.add_argument("--db", metavar="URL",
                        help="SQLAlchemy database URL (default: $FRAUDSTREAM_DB_URL, else "
                             "sqlite:///$FRAUDSTREAM_HOME/fraudstream.db)")
    parser.add_argument("--json", action="store_true", help=json_help)


def register(sub: Any) -> None:
    from store.settings import add_mature_after

    models = sub.add_parser("models", help="the model registry: list, show, promote",
                            formatter_class=_DEFAULTS)
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    mlist = msub.add_parser("list", help="all registered versions, one line each",
                            formatter_class=_DEFAULTS)
    _db_flag(mlist)
    mlist.set_defaults(func=run_models)
    show = msub.add_parser("show", help="one version: stage, threshold, test metrics, report",
                           formatter_class=_DEFAULTS)
    show.add_argument("version", nargs="?", default="production",
                      help="a version number, or 'production'")
    _db_flag(show, json_help="the full record (all metrics, hashes) as JSON")
    show.set_defaults(func=run_models)
    promote = msub.add_parser("promote", help="make a version the production model (the "
                              "current one is archived)", formatter_class=_DEFAULTS)
    promote.add_argument("version", type=int, help="the version number to promote")
    promote.add_argument("--by", metavar="NAME",
                         help="who decides, recorded as person:NAME (default: $USER)")
    _db_flag(promote, json_help="the promoted model's full record as JSON")
    promote.set_defaults(func=run_models)
    from store.compare import register_compare

    register_compare(msub, _DEFAULTS)

    alerts = sub.add_parser("alerts", help="flagged transactions: list, filter, export, show one",
                            formatter_class=_DEFAULTS)
    asub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    alist = asub.add_parser(
        "list", help="alerts with their current label (filter, sort, export as CSV)",
        formatter_class=_DEFAULTS,
        description="Alerts (flagged transactions) with each transaction's current label. "
                    "Times are event times (the transaction's own time, UTC; replays place "
                    "dataset time on the calendar from 2013-09-01).")
    alist.add_argument("--order", choices=("score", "newest"), default="score",
                       help="'score' = highest score first; 'newest' = latest event time first")
    alist.add_argument("--limit", type=int, default=20,
                       help="at most this many alerts; 0 = all (e.g. for --format csv)")
    alist.add_argument("--min-score", type=float, metavar="S", help="only scores >= S (0..1)")
    alist.add_argument("--max-score", type=float, metavar="S", help="only scores <= S (0..1)")
    alist.add_argument("--since", metavar="TIME",
                       help="only events at or after TIME (ISO date or timestamp, UTC unless "
                            "it says otherwise), e.g. 2013-09-02T06:00")
    alist.add_argument("--until", metavar="TIME", help="only events before TIME (ISO, as --since)")
    alist.add_argument("--model-version", type=int, metavar="V",
                       help="only alerts of model version V")
    alist.add_argument("--label", choices=("fraud", "genuine", "none"),
                       help="only transactions whose current label is this ('none' = no label "
                            "yet)")
    alist.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="table for reading, csv for a spreadsheet, json for programs")
    alist.add_argument("--db", metavar="URL",
                       help="SQLAlchemy database URL (default: $FRAUDSTREAM_DB_URL, else "
                            "sqlite:///$FRAUDSTREAM_HOME/fraudstream.db)")
    alist.add_argument("--json", action="store_const", const="json", dest="format",
                       help="same as --format json")
    alist.set_defaults(func=run_alerts)
    ashow = asub.add_parser(
        "show", help="everything known about one transaction: alerts, decisions, labels",
        formatter_class=_DEFAULTS)
    ashow.add_argument("transaction_id", metavar="TRANSACTION_ID",
                       help="the transaction id (first column of `alerts list`)")
    _db_flag(ashow)
    ashow.set_defaults(func=run_alert_show)

    counts = sub.add_parser(
        "counts", help="confusion counts per model version, from decisions and labels",
        formatter_class=_DEFAULTS,
        description="tp/fp/tn/fn per model version over labelled decisions plus mature "
                    "unlabelled ones (counted as genuine); 'pending' = unlabelled, not yet mature. "
                    "The clock is the latest event time decided.")
    add_mature_after(counts)
    counts.add_argument("--by", choices=("version", "day"), default="version",
                        help="'day' splits each version by event-time day (cohorts)")
    counts.add_argument("--ranking", action="store_true",
                        help="instead: ROC AUC, average precision and card precision top-k "
                             "(keyed transactions) of each version on its matured decisions")
    counts.add_argument("--top-k", type=int, default=100, metavar="K",
                        help="k of card precision top-k (the investigators' daily capacity)")
    _db_flag(counts)
    counts.set_defaults(func=run_counts)

    store = sub.add_parser("store", help="database maintenance", formatter_class=_DEFAULTS)
    ssub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    prune = ssub.add_parser("prune", help="delete decisions and labels older than a date",
                            formatter_class=_DEFAULTS)
    prune.add_argument("--before", required=True, metavar="DATE",
                       help="ISO date or timestamp (UTC unless it says otherwise), "
                            "e.g. 2013-09-02")
    _db_flag(prune)
    prune.set_defaults(func=run_prune)


def _print(data: Any, as_json: bool, lines: list[str]) -> None:
    print(json.dumps(data, default=str) if as_json else "\n".join(lines))


def run_models(args: argparse.Namespace) -> int:
    from schemas.errors import FraudstreamError
    from store import registry
    from store.db import connect
    from store.model_text import (
        full_record,
        list_entry,
        list_lines,
        model_summary_lines,
        promotion_lines,
    )

    engine = connect(args.db, create=False)
    latest = registry.latest_promotions(engine)
    if args.models_command == "list":
        records = registry.list_versions(engine)
        history = registry.promotion_history(engine)
        _print([list_entry(r, latest.get(r.version), history) for r in records], args.json,
               list_lines(records, latest, history))
        return 0
    if args.models_command == "promote":
        try:
            previous: int | None = registry.get(engine, "production").version
        except FraudstreamError:
            previous = None
        from store.compare import live_evidence
        from store.settings import maturity

        # the `models compare` evidence, if any, on the deployment's label window
        live = live_evidence(engine, args.version, previous, maturity().window)
        span = live["window"] if live else None
        record = registry.promote(
            engine, args.version, decided_by=f"person:{_person(args)}",
            comparison={"live": live} if live else None,
            window=(datetime.fromisoformat(span["start"]), datetime.fromisoformat(span["end"]))
            if span else None)
        if args.json:
            print(json.dumps({**full_record(record, registry.latest_promotions(engine)
                                             .get(record.version)),
                              "previous_production": previous}, default=str))
        elif previous == record.version:
            print(f"model {record.version} is already production")
        else:
            was = f"was {previous}" if previous is not None else "there was none"
            print(f"model {record.version} is now production ({was})")
        return 0
    record = registry.get(engine, args.version)
    promotion = latest.get(record.version)
    _print(full_record(record, promotion), args.json,
           model_summary_lines(record) + promotion_lines(record, promotion))
    return 0


def _person(args: argparse.Namespace) -> str:
    """Who promotes: ``--by``, else the login name ($USER), else "unknown"."""
    import getpass

    from schemas.errors import FraudstreamError

    if args.by is not None:
        name = args.by.strip()
        if not name or any(ch.isspace() or not ch.isprintable() for ch in name) \
                or len(name) > 100:
            raise FraudstreamError(f"--by must be a name without spaces (at most 100 "
                                   f"characters), not {args.by!r}")
        return name
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):
        return "unknown"


def alert_filter(args: argparse.Namespace) -> Any:
    """The :class:`store.queries.AlertFilter` of ``alerts list``'s flags; one-line errors."""
    from schemas.errors import FraudstreamError
    from store.queries import AlertFilter

    for flag, value in (("--min-score", args.min_score), ("--max-score", args.max_score)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise FraudstreamError(f"{flag} must be between 0 and 1, not {value}")
    if args.min_score is not None and args.max_score is not None \
            and args.min_score > args.max_score:
        raise FraudstreamError(f"--min-score {args.min_score} is above --max-score "
                               f"{args.max_score}: nothing can match")
    from schemas.durations import parse_time

    since, until = parse_time("--since", args.since), parse_time("--until", args.until)
    if since is not None and until is not None and since >= until:
        raise FraudstreamError(f"--since {since.isoformat()} is not before --until "
                               f"{until.isoformat()}: nothing can match")
    if args.limit < 0:
        raise FraudstreamError("--limit must be >= 0 (0 = all)")
    if args.model_version is not None and args.model_version < 1:
        raise FraudstreamError("--model-version must be >= 1")
    return AlertFilter(min_score=args.min_score, max_score=args.max_score, since=since,
                       until=until, model_version=args.model_version, label=args.label)


def _label_text(row: dict[str, Any]) -> str:
    if row["label"] is None:
        return "-"
    return f"{row['label']} ({row['label_source']})" if row.get("label_source") else row["label"]


def run_alerts(args: argparse.Namespace) -> int:
    from store.db import connect
    from store.queries import ALERT_COLUMNS, list_alerts

    where = alert_filter(args)
    rows = list_alerts(connect(args.db, create=False), order=args.order,
                       limit=args.limit or None, where=where)
    if args.format == "json":
        print(json.dumps(rows, default=str))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=ALERT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (v.isoformat() if isinstance(v, datetime) else v)
                             for k, v in row.items()})
    elif not rows:
        print("no alerts" + (" match these filters" if where != type(where)() else ""))
    else:
        width = max(14, *(len(r["transaction_id"]) for r in rows))
        print(f"{'transaction':<{width}}  {'event time (UTC)':<19}  {'model':>5}  {'score':>6}  "
              f"{'amount':>10}  label")
        for r in rows:
            print(f"{r['transaction_id']:<{width}}  {r['event_time']:%Y-%m-%d %H:%M:%S}  "
                  f"{'v' + str(r['model_version']):>5}  {r['score']:>6.4f}  {r['amount']:>10,.2f}  "
                  f"{_label_text(r)}")
    return 0


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if isinstance(value, datetime) else str(value)


def run_alert_show(args: argparse.Namespace) -> int:
    from schemas.errors import FraudstreamError
    from store.db import connect
    from store.queries import transaction_story

    story = transaction_story(connect(args.db, create=False), args.transaction_id)
    if not story.known:
        raise FraudstreamError(f"no alert, decision or label for transaction "
                               f"{args.transaction_id!r} (ids are listed by `fraudstream alerts "
                               "list`)")
    if args.json:
        print(json.dumps(story.to_dict(), default=str))
        return 0
    current = story.current_label
    truth = f"{current['label']} ({current['source']})" if current else "no label yet"
    print(f"transaction {story.transaction_id}: truth = {truth}")
    print(f"alerts ({len(story.alerts)}):" if story.alerts else "alerts: none")
    for a in story.alerts:
        print(f"  v{a['model_version']}: score {a['score']:.4f} >= threshold {a['threshold']:.4f}"
              f"  amount {a['amount']:,.2f}  event time {_when(a['event_time'])}  "
              f"raised {_when(a['created_at'])}  from {a['source_topic']}/"
              f"{a['source_partition']}@{a['source_offset']}")
    print(f"decisions ({len(story.decisions)}):" if story.decisions
          else "decisions: none (not scored, or pruned)")
    for d in story.decisions:
        verdict = "flagged" if d["flagged"] else "passed"
        print(f"  v{d['model_version']}: {verdict}  score {d['score']:.4f} (threshold "
              f"{d['threshold']:.4f})  amount {d['amount']:,.2f}  event time "
              f"{_when(d['event_time'])}  scored {_when(d['scored_at'])}")
    print(f"labels ({len(story.labels)}, oldest first):" if story.labels else "labels: none")
    for lab in story.labels:
        mark = "  <- current" if lab["current"] else ""
        reason = f"  reason: {lab['reason']}" if lab.get("reason") else ""
        print(f"  {lab['label']:<7} from {lab['source']:<10} observed {_when(lab['observed_at'])}"
              f"  id {lab['label_id']}{reason}{mark}")
    return 0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def run_counts(args: argparse.Namespace) -> int:
    from store.counts import matured_counts
    from store.db import connect
    from store.settings import maturity

    mature = maturity(args.mature_after)
    if args.ranking:
        return _ranking(args, mature)
    report = matured_counts(connect(args.db, create=False), mature.window, by_day=args.by == "day")
    if args.json:
        print(json.dumps({**report.to_dict(), **mature.to_dict()}, default=str))
        return 0
    if not report.rows:
        print("nothing scored yet")
        return 0
    print(f"as of {report.as_of:%Y-%m-%d %H:%M:%S} (latest event decided); {mature.describe()}: "
          f"unlabelled decisions older than {mature.text} count as genuine")
    for r in report.rows:
        day = f" {r.day}" if r.day else ""
        print(f"v{r.model_version}{day}: decisions={r.decisions} tp={r.tp} fp={r.fp} tn={r.tn} "
              f"fn={r.fn} pending={r.pending} precision={_fmt(r.precision)} "
              f"recall={_fmt(r.recall)} fraud-amount-caught={_fmt(r.amount_caught)}")
    print(f"orphan labels (transaction never scored): {report.orphans}")
    return 0


def _ranking(args: argparse.Namespace, mature: Any) -> int:
    from schemas.errors import FraudstreamError
    from store.db import connect
    from store.ranking import describe, ranking

    if args.top_k < 1:
        raise FraudstreamError(f"--top-k must be >= 1, got {args.top_k}")
    rows = ranking(connect(args.db, create=False), mature.window, top_k=args.top_k)
    _print({"rows": rows, **mature.to_dict()}, args.json,
           [describe(r) for r in rows] or ["nothing scored yet"])
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from schemas.durations import parse_time
    from store.db import connect
    from store.queries import prune

    before = parse_time("--before", args.before)
    assert before is not None
    pruned = prune(connect(args.db, create=False), before)
    _print({"before": before.isoformat(), "decisions": pruned.decisions,
            "labels": pruned.labels}, args.json,
           [f"pruned {pruned.decisions} decisions and {pruned.labels} labels older than "
            f"{before.isoformat()}"])
    return 0
