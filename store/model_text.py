"""What ``models list`` and ``models show`` print of a registered model: its summary, where its
test figures come from, the gate's same-slice comparison, its training data and its latest
promotion decision.

Each model's own test figures come from its own test split (a stratified share of the file it
was trained on, or the most recent rows of a retraining round's window), so the test AUCs of two
models are from different data and are not comparable; the gate's comparison is — both models
scored the same slice — and is shown beside them where there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NOT_COMPARABLE = ("Test figures are each model's own test split, different data for each: not "
                  "comparable. A 'gate' line compares two models on the same slice.")


def report_path(version: int) -> Path:
    from store.settings import home

    return home() / "reports" / f"v{version}" / "index.html"


def full_record(record: Any, promotion: Any = None) -> dict[str, Any]:
    report = report_path(record.version)
    return {**record.summary(), "metrics": record.metrics, "data_sha256": record.data_sha256,
            "manifest_sha256": record.manifest_sha256,
            "report": str(report) if report.is_file() else None,
            "training": record.training,
            "promotion": promotion.to_dict() if promotion is not None else None}


def _num(value: Any, *, count: bool = False) -> str:
    if value is None:
        return "-"
    return f"{int(round(float(value))):,}" if count else f"{float(value):.4f}"


def _kind(record: Any) -> str:
    """``family/strategy`` when the record has a model family, else the strategy."""
    family = getattr(record, "family", None)
    return f"{family}/{record.strategy}" if family else record.strategy


def test_set(record: Any) -> dict[str, Any]:
    """Which data a model's test figures come from: ``text`` for people, plus ``kind``
    (``stratified`` / ``out-of-time`` / ``unknown``), ``rows``, ``frauds`` and the event-time
    ``start`` / ``end`` when recorded."""
    training = record.training or {}
    test = (record.metrics or {}).get("test", {}).get("threshold", {})
    split = training.get("split")
    where = (f"topic {training['topic']}" if training.get("topic")
             else Path(str(training.get("csv") or "?")).name)
    if isinstance(split, dict) and isinstance(split.get("test"), dict):
        t = split["test"]
        text = (f"own test split: the most recent {t['rows']:,} rows of {where} (events "
                f"{t['start'][:16]} .. {t['end'][:16]}, {t['frauds']:,} frauds)")
        return {"kind": split.get("kind", "out-of-time"), "rows": t["rows"],
                "frauds": t["frauds"], "start": t["start"], "end": t["end"], "text": text}
    counts = [test.get(k) for k in ("tp", "fp", "tn", "fn")]
    rows = int(sum(counts)) if all(c is not None for c in counts) else None
    frauds = int(test["tp"] + test["fn"]) if rows is not None else None
    if split == "protocol":  # keyed data: the handbook's train / delay / test periods
        period = (training.get("protocol") or {}).get("test") or {}
        text = (f"protocol test period {period.get('first_day')} .. {period.get('last_day')} of "
                f"{where} ({training.get('test_rows', 0):,} rows; transactions of cards already "
                "known compromised left out)")
        return {"kind": "protocol", "rows": training.get("test_rows"), "frauds": frauds,
                "start": period.get("first_day"), "end": period.get("last_day"), "text": text}
    if split == "stratified":
        size = f"{rows:,}-row " if rows is not None else ""
        text = (f"own test split: a stratified random {size}share of {where}"
                + (f" ({frauds:,} frauds)" if frauds is not None else ""))
        return {"kind": "stratified", "rows": rows, "frauds": frauds, "text": text}
    return {"kind": "unknown", "rows": rows, "frauds": frauds,
            "text": "own test split (its data was not recorded)"}


def gate_comparison(history: list[Any], version: int) -> dict[str, Any] | None:
    """The latest gate decision that scored ``version`` and the production model on the same
    slice (None when the gate never compared it with one): versions, figures, slice, outcome."""
    for record in reversed(history):
        comparison = record.comparison or {}
        if (record.version == version and record.decided_by == "gate"
                and comparison.get("production") and comparison.get("candidate")):
            return {"version": version, "production_version": comparison.get(
                        "production_version", record.previous_version),
                    "outcome": record.outcome, "slice": comparison.get("slice"),
                    "candidate": comparison["candidate"],
                    "production": comparison["production"]}
    return None


def _figures(version: Any, m: dict[str, Any]) -> str:
    return f"v{version} AUC {_num(m.get('auc'))} AUPRC {_num(m.get('prc'))}"


def gate_line(gate: dict[str, Any]) -> str:
    """``gate, same slice (…): v3 AUC … AUPRC … vs production v1 AUC … AUPRC … -> promoted``."""
    s = gate.get("slice") or {}
    span = (f" (events {s['start'][:16]} .. {s['end'][:16]}, {s['rows']:,} rows, "
            f"{s['frauds']:,} frauds)" if {"start", "end", "rows", "frauds"} <= set(s) else "")
    return (f"gate, same slice{span}: {_figures(gate['version'], gate['candidate'])} vs "
            f"production {_figures(gate['production_version'], gate['production'])} "
            f"-> {gate['outcome']}")


def list_entry(record: Any, promotion: Any, history: list[Any]) -> dict[str, Any]:
    """One model of ``models list --json``: its summary, its test AUC with the data it is
    from, the gate's same-slice comparison (or None) and its latest decision."""
    test = (record.metrics or {}).get("test", {}).get("threshold", {})
    return {**record.summary(), "test_auc": test.get("auc"), "test_set": test_set(record),
            "gate_same_slice": gate_comparison(history, record.version),
            "promotion": promotion.to_dict() if promotion is not None else None}


def list_lines(records: list[Any], latest: dict[int, Any], history: list[Any]) -> list[str]:
    """``models list`` for people: a line per model, then where its test AUC is from and the
    gate's same-slice comparison when there is one."""
    if not records:
        return ["no models registered"]
    lines = [NOT_COMPARABLE]
    for r in records:
        test = (r.metrics or {}).get("test", {}).get("threshold", {})
        lines.append(f"v{r.version:<4} {r.stage:<10} {_kind(r):<10} threshold={r.threshold:.4f} "
                     f"{r.created_at:%Y-%m-%d %H:%M}"
                     + (f"  {latest[r.version].line()}" if r.version in latest else ""))
        lines.append(f"      test AUC {_num(test.get('auc'))} on its {test_set(r)['text']}")
        gate = gate_comparison(history, r.version)
        if gate is not None:
            lines.append(f"      {gate_line(gate)}")
    return lines


def promotion_lines(record: Any, promotion: Any) -> list[str]:
    """What ``models show`` says of the training data and the latest promotion decision."""
    lines = []
    training = record.training or {}
    if training.get("synthetic"):
        lines.append("data: SYNTHETIC (a `fraudstream synth` stand-in): its figures say nothing "
                     "about real fraud")
    if training.get("input") == "transaction.v2":
        periods = training.get("protocol") or {}
        span = {name: f"{p['first_day']} .. {p['last_day']}" for name, p in periods.items()}
        lines.append(f"keyed (transaction.v2) model, behaviour spec "
                     f"{str(training.get('behaviour_spec_sha256'))[:12]}: inputs "
                     f"{', '.join((training.get('behaviour_spec') or {}).get('inputs', []))}")
        lines.append(f"protocol: trained {span.get('train')}, left out "
                     f"{span.get('delay (left out)')}, tested {span.get('test')}")
    if training.get("window"):
        w, labels = training["window"], training.get("labels") or {}
        lines.append(f"trained on {training.get('source')} events {w['first_event'][:19]} .. "
                     f"{w['last_event'][:19]} ({training.get('rows', 0):,} rows, "
                     f"{training.get('frauds', 0):,} frauds"
                     + (f"; {labels['left_out']:,} too recent, left out"
                        if "left_out" in labels else "") + ")")
    return lines + (promotion.lines() if promotion is not None else [])


def model_summary_lines(record: Any) -> list[str]:
    """The human ``models show``: who, what threshold, how good on test, where the report is."""
    lines = [f"model v{record.version}  {record.stage}  {_kind(record)}  "
             f"registered {record.created_at:%Y-%m-%d %H:%M}",
             f"threshold {record.threshold:.4f}  (policy {record.threshold_policy}, chosen on the "
             "validation split)"]
    test = (record.metrics or {}).get("test", {})
    for at, name in (("threshold", f"@ {record.threshold:.4f}"), ("0.5", "@ 0.5")):
        m = test.get(at)
        if not m:
            continue
        parts = [f"{k}={_num(m.get(k))}" for k in ("precision", "recall") if k in m]
        parts += [f"{k}={_num(m.get(k), count=True)}" for k in ("tp", "fp", "fn") if k in m]
        if at == "threshold":
            parts = [f"{k}={_num(m.get(k))}" for k in ("auc", "prc") if k in m] + parts
            if "card_precision_top_k" in m:
                parts.append(f"card_precision_top_{m.get('top_k')}="
                             f"{_num(m['card_precision_top_k'])}")
        lines.append(f"test {name}: " + " ".join(parts))
    lines.append(f"test data: its {test_set(record)['text']}")
    report = report_path(record.version)
    lines.append(f"report: {report}" if report.is_file()
                 else f"report: none at {report} (trained with another FRAUDSTREAM_HOME?)")
    lines.append(f"artifacts: {record.path()}  (--json for every metric and hash)")
    return lines
