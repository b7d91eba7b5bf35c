"""``fraudstream models compare A B``: two model versions on the same matured labels.

Both versions' decisions (production's, and a shadow's logged by ``score --shadow``) are taken
on the transactions *both* decided, with each transaction's truth by the rules counts use: its
current label (:mod:`store.truth`), else genuine once mature (:func:`store.counts.maturity_cutoff`
against the stream's clock), else pending (left out). Confusion counts come from
:func:`store.counts.matured_counts` (``common_to``); the ranking figures (AUPRC = average
precision, ROC-AUC) from the decisions' scores of the same matured rows.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, case, select

from schemas.errors import FraudstreamError
from schemas.times import as_utc
from store.counts import decided_by_all, matured_counts, maturity_cutoff, stream_clock
from store.tables import decisions
from store.truth import current_labels


@dataclass(frozen=True)
class Paired:
    """Matured decisions of both versions, aligned by transaction (sorted by id):
    ``y`` ``(n,)`` 0/1 truth, ``scores[v]``/``flagged[v]`` ``(n,)`` per version."""

    transaction_ids: list[str]
    y: np.ndarray
    scores: dict[int, np.ndarray]
    flagged: dict[int, np.ndarray]
    window: tuple[datetime, datetime] | None = None  # first and last event time of those


def paired(engine: Engine, a: int, b: int, cutoff: datetime) -> Paired:
    """The transactions both ``a`` and ``b`` decided whose truth is known or mature at
    ``cutoff`` (labelled: the label; unlabelled at or before ``cutoff``: genuine)."""
    d, truth = decisions.c, current_labels()
    state = case(
        (truth.c.is_fraud.is_not(None), truth.c.is_fraud), (d.event_time <= cutoff, 0), else_=None
    ).label("truth")
    query = (
        select(d.transaction_id, d.model_version, d.score, d.flagged, state, d.event_time)
        .select_from(decisions.outerjoin(truth, truth.c.transaction_id == d.transaction_id))
        .where(decided_by_all([a, b]))
        .order_by(d.transaction_id, d.model_version)
    )
    rows: dict[str, dict[int, tuple[float, bool]]] = {}
    known: dict[str, int] = {}
    times = []
    with engine.connect() as conn:
        for tid, version, score, flagged, label, when in conn.execute(query):
            if label is None:
                continue
            rows.setdefault(tid, {})[version] = (float(score), bool(flagged))
            known[tid] = int(label)
            times.append(as_utc(when))
    ids = sorted(rows)
    return Paired(
        ids,
        np.array([known[t] for t in ids], dtype=np.int8),
        {v: np.array([rows[t][v][0] for t in ids], dtype=np.float64) for v in (a, b)},
        {v: np.array([rows[t][v][1] for t in ids], dtype=bool) for v in (a, b)},
        (min(times), max(times)) if times else None,
    )


def compare(
    engine: Engine,
    a: int,
    b: int,
    mature_after: timedelta = timedelta(0),
    *,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The comparison report of versions ``a`` and ``b`` (JSON-ready)."""
    from models.evaluation import evaluate

    if a == b:
        raise FraudstreamError(f"compare two different versions (got {a} twice)")
    as_of = as_of or stream_clock(engine)
    if as_of is None:
        raise FraudstreamError("nothing scored yet: no decisions to compare")
    counts = {
        r.model_version: r
        for r in matured_counts(engine, mature_after, as_of=as_of, common_to=[a, b]).rows
    }
    if set(counts) != {a, b}:
        raise FraudstreamError(
            f"versions {a} and {b} decided no transaction in common (a "
            "shadow's decisions come from `fraudstream score --shadow V`)"
        )
    pairs = paired(engine, a, b, maturity_cutoff(as_of, mature_after))
    y = pairs.y
    both_classes = 0 < int(y.sum()) < len(y)
    per_version = {}
    for v in (a, b):
        r = counts[v]
        ranking = evaluate(y, pairs.scores[v], 0.5) if both_classes else {}
        per_version[str(v)] = {
            "tp": r.tp,
            "fp": r.fp,
            "tn": r.tn,
            "fn": r.fn,
            "pending": r.pending,
            "decisions": r.decisions,
            "precision": r.precision,
            "recall": r.recall,
            "amount_caught": r.amount_caught,
            "auprc": ranking.get("prc"),
            "roc_auc": ranking.get("auc"),
        }
    fa, fb, fraud = pairs.flagged[a], pairs.flagged[b], y == 1
    return {
        "versions": [a, b],
        "as_of": as_of.isoformat(),
        "mature_after_s": mature_after.total_seconds(),
        "transactions": counts[a].decisions,
        "matured": len(y),
        "pending": counts[a].pending,
        "window": None
        if pairs.window is None
        else {"start": pairs.window[0].isoformat(), "end": pairs.window[1].isoformat()},
        "frauds": int(fraud.sum()),
        "models": per_version,
        "agreement": {
            "both_flagged": int(np.sum(fa & fb)),
            "only_a": int(np.sum(fa & ~fb)),
            "only_b": int(np.sum(~fa & fb)),
            "frauds_caught_only_by_a": int(np.sum(fa & ~fb & fraud)),
            "frauds_caught_only_by_b": int(np.sum(~fa & fb & fraud)),
        },
    }


def live_evidence(
    engine: Engine, version: int, production: int | None, mature_after: timedelta = timedelta(0)
) -> dict[str, Any] | None:
    """What a person promoting ``version`` over ``production`` had as live evidence: the
    :func:`compare` report of the two (None when there is no production model, or they decided
    no transaction in common). ``models promote`` records it with the promotion."""
    if production is None or production == version:
        return None
    try:
        return compare(engine, version, production, mature_after)
    except FraudstreamError:
        return None


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def human(report: dict[str, Any]) -> list[str]:
    a, b = report["versions"]
    agree = report["agreement"]
    lines = [
        f"v{a} vs v{b} on the {report['transactions']:,} transactions both decided: "
        f"{report['matured']:,} with known or mature truth ({report['frauds']:,} frauds), "
        f"{report['pending']:,} pending; as of {report['as_of'][:19]}"
    ]
    lines.append(
        f"{'':>6} {'auprc':>7} {'roc_auc':>7} {'precision':>9} {'recall':>7} "
        f"{'tp':>6} {'fp':>7} {'fn':>6}"
    )
    for v in (a, b):
        m = report["models"][str(v)]
        lines.append(
            f"{'v' + str(v):>6} {_f(m['auprc']):>7} {_f(m['roc_auc']):>7} "
            f"{_f(m['precision']):>9} {_f(m['recall']):>7} {m['tp']:>6,} {m['fp']:>7,} "
            f"{m['fn']:>6,}"
        )
    lines.append(
        f"flagged by both {agree['both_flagged']:,}, only v{a} {agree['only_a']:,} "
        f"({agree['frauds_caught_only_by_a']:,} frauds), only v{b} {agree['only_b']:,} "
        f"({agree['frauds_caught_only_by_b']:,} frauds)"
    )
    return lines


def register_compare(msub: Any, formatter: Any) -> None:
    """``models compare A B`` under the ``models`` subparsers ``msub``."""
    from store.settings import add_mature_after

    p = msub.add_parser(
        "compare",
        help="two versions on the same matured labels (e.g. production vs shadow)",
        formatter_class=formatter,
        description="Both versions' decisions on the transactions both decided (a shadow's "
        "come from `score --shadow`), against each transaction's current label, unlabelled "
        "ones counting as genuine once older than --mature-after (the stream's clock).",
    )
    p.add_argument("a", type=int, metavar="A", help="a model version")
    p.add_argument("b", type=int, metavar="B", help="another model version")
    add_mature_after(p)
    p.add_argument(
        "--db",
        metavar="URL",
        help="SQLAlchemy database URL (default: $FRAUDSTREAM_DB_URL, else "
        "sqlite:///$FRAUDSTREAM_HOME/fraudstream.db)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from store.db import connect
    from store.settings import maturity

    mature = maturity(args.mature_after)
    report = compare(connect(args.db, create=False), args.a, args.b, mature.window)
    print(json.dumps({**report, **mature.to_dict()}) if args.json
          else "\n".join([*human(report), mature.describe()]))
    return 0
