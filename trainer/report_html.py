"""The HTML page of the training report: a summary a person can act on (data, registered run,
threshold and what it means for alert volume), the strategies, metrics tables and the figures."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from trainer.report_data import (
    STRATEGY_TEXT,
    THRESHOLD_FREE_METRICS,
    THRESHOLD_METRICS,
    DataInfo,
    RunReport,
    ThresholdCurve,
    confusion_counts,
    format_metric,
    threshold_curve,
)

#: What each threshold policy means (``--threshold-policy``), as a clause.
POLICY_TEXT: dict[str, str] = {
    "max-f1": "the threshold with the best F1 (the balance of precision and recall) on the "
              "validation split",
    "fixed": "a fixed threshold given on the command line",
    "precision": "the lowest threshold whose validation precision reaches {v} (the most recall "
                 "at that precision)",
    "recall": "the highest threshold whose validation recall is still at least {v} (the fewest "
              "alerts at that recall)",
    "alerts-per-day": "the lowest threshold that keeps the alerts within {v} a day at the event "
                      "rate of the data (analyst capacity)",
    "cost": "the threshold with the lowest expected cost on the validation split (missed fraud "
            "costs its amount, each alert {v})",
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em}
td{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}th.metric{text-align:left}.run{border-left:2px solid #888}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}
.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.note{color:#555}
.summary{background:#f7f9fc;border:1px solid #d8e0ec;padding:.4em 1.2em;border-radius:4px}
.summary li{margin:.35em 0}.synthetic{color:#b00;font-weight:bold}
td.free{color:#777;text-align:center}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(src: str, alt: str) -> str:
    return f'<img src="{_esc(src)}" alt="{_esc(alt)}">'


def _metric_value(run: RunReport, split: str, at: str, name: str) -> float | None:
    value = run.metrics.get(split, {}).get(at, {}).get(name)
    return None if value is None else float(value)


def _threshold_table(runs: Sequence[RunReport]) -> str:
    """Threshold-dependent metrics: per run four columns, val/test at its threshold and at 0.5."""
    cols = [(split, at) for at in ("threshold", "0.5") for split in ("val", "test")]

    def cls(i: int) -> str:
        return ' class="run"' if i == 0 else ""

    head1 = "".join(f'<th colspan="{len(cols)}" class="run">{_esc(r.name)}</th>' for r in runs)
    head2 = "".join(
        f"<th{cls(i)}>{split} @ {_esc(f'{r.threshold:.3f}') if at == 'threshold' else '0.5'}</th>"
        for r in runs for i, (split, at) in enumerate(cols)
    )
    body = []
    for name in THRESHOLD_METRICS:
        cells = "".join(
            f"<td{cls(i)}>{_esc(format_metric(name, _metric_value(r, split, at, name)))}</td>"
            for r in runs for i, (split, at) in enumerate(cols)
        )
        body.append(f'<tr><th class="metric">{_esc(name)}</th>{cells}</tr>')
    return (
        f'<table>\n<tr><th class="metric" rowspan="2">metric</th>{head1}</tr>\n'
        f"<tr>{head2}</tr>\n" + "\n".join(body) + "\n</table>"
    )


_RUN = ' class="run"'


def _free_table(runs: Sequence[RunReport]) -> str:
    """Metrics of the scores themselves (no threshold): per run val and test, once."""
    head1 = "".join(f'<th colspan="2" class="run">{_esc(r.name)}</th>' for r in runs)
    head2 = "".join('<th class="run">val</th><th>test</th>' for _ in runs)
    body = []
    for name in THRESHOLD_FREE_METRICS:
        cells = "".join(
            f"<td{_RUN if i == 0 else ''}>"
            f"{_esc(format_metric(name, _metric_value(r, split, 'threshold', name)))}</td>"
            for r in runs for i, split in enumerate(("val", "test")))
        body.append(f'<tr><th class="metric">{_esc(name)}</th>{cells}</tr>')
    return (
        f'<table>\n<tr><th class="metric" rowspan="2">metric</th>{head1}</tr>\n'
        f"<tr>{head2}</tr>\n" + "\n".join(body) + "\n</table>"
    )


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.3g} %" if whole else "—"


def _data_items(data: DataInfo | None, runs: Sequence[RunReport]) -> str:
    main = runs[0]
    split = (f"split: train {len(main.y_train):,} rows ({int(np.sum(main.y_train)):,} frauds), "
             f"test {len(main.y_test):,} rows ({int(np.sum(main.y_test)):,} frauds), "
             "validation the rest")
    if data is None:
        return f"<li><strong>Data</strong>: not recorded in this report; {_esc(split)}.</li>"
    kind = {True: '<span class="synthetic">SYNTHETIC</span> (a <code>fraudstream synth</code> '
                  "stand-in: figures say nothing about real fraud)",
            False: "real data", None: "synthetic or real: not recorded"}[data.synthetic]
    parts = [f"<code>{_esc(data.source)}</code>" if data.source else "source not recorded"]
    if data.rows is not None:
        frauds = (f", {data.frauds:,} frauds ({_pct(data.frauds, data.rows)})"
                  if data.frauds is not None else "")
        parts.append(f"{data.rows:,} rows{frauds}")
    if data.days is not None:
        parts.append(f"spanning {data.days:.3g} days of transaction time")
    return (f"<li><strong>Data</strong>: {', '.join(parts)}; {kind}.<br>"
            f"<span class=\"note\">{_esc(split)}.</span></li>")


def _registered_item(runs: Sequence[RunReport], version: int | None,
                     reason: str | None, retrained: bool = False) -> str:
    main = runs[0]
    what = f"model version {version}" if version is not None else "the model"
    command = "retrain" if retrained else "train"
    if retrained:
        why = reason or ("it is this retraining round's candidate of its model family "
                         "(<code>retrain --family</code>; imbalance strategy "
                         "<code>--strategy</code>, default weighted); the gate decides whether "
                         "it becomes production (<code>fraudstream models show</code>)")
    else:
        why = reason or ("it is the strategy asked for (<code>--strategy</code>, default "
                         "weighted); <code>--compare</code> trains the others only to show them "
                         "beside it, it does not pick the best")
    text = (f"<li><strong>Registered</strong>: {_esc(what)} is the <strong>{_esc(main.name)}"
            f"</strong> run, because {why if reason is None else _esc(why)}.")
    prc = {r.name: _metric_value(r, "test", "threshold", "prc") for r in runs}
    best = max((r for r in runs if prc[r.name] is not None), key=lambda r: prc[r.name] or 0.0,
               default=None)
    if best is not None and best is not main and prc[main.name] is not None:
        text += (f" Here <strong>{_esc(best.name)}</strong> reached a higher test AUPRC "
                 f"({format_metric('prc', prc[best.name])} against "
                 f"{format_metric('prc', prc[main.name])}) on this data: consider "
                 f"<code>{command} --strategy {_esc(best.strategy or best.name)}</code>.")
    stopping = main.stopping()
    if stopping:
        text += f" Training: {_esc(stopping)}."
    return text + "</li>"


def policy_text(policy: str) -> str:
    name, _, value = policy.partition(":")
    return POLICY_TEXT.get(name, f"policy {policy}").format(v=value)


def why_not_half(run: RunReport) -> str:
    """Why the operating threshold is not 0.5, computed from the run's test split: which way
    the threshold moved, and what 0.5 would have flagged, caught and missed instead."""
    t = run.threshold
    at_t = confusion_counts(run.y_test, run.p_test, t)
    at_half = confusion_counts(run.y_test, run.p_test, 0.5)
    frauds = int(at_t[1].sum())

    def flagged(cm: np.ndarray) -> int:
        return int(cm[0, 1] + cm[1, 1])

    def describe(cm: np.ndarray, where: str) -> str:
        n = flagged(cm)
        precision = f"precision {cm[1, 1] / n:.2f}" if n else "no alerts"
        return (f"{where} flags {n:,} test transactions ({int(cm[0, 1]):,} legitimate, "
                f"{precision}) and catches {int(cm[1, 1]):,} of {frauds:,} frauds "
                f"(recall {cm[1, 1] / frauds if frauds else 0:.2f})")

    chosen = f"The threshold {t:.3g} was chosen as {policy_text(run.threshold_policy)}."
    if np.isclose(t, 0.5):
        return chosen + " It happens to be 0.5, the tutorial's default."
    if t < 0.5:
        direction = ("It is <strong>below 0.5</strong>: this model's scores for frauds are "
                     "mostly low, so at 0.5 it would miss frauds it can catch.")
    elif run.strategy in ("weighted", "oversample"):
        how = "class weighting" if run.strategy == "weighted" else "oversampling"
        direction = (f"It is <strong>above 0.5</strong>: {how} pushes the model's scores up, "
                     "so at 0.5 it would over-flag legitimate transactions.")
    else:
        direction = ("It is <strong>above 0.5</strong>: enough legitimate transactions score "
                     "above 0.5 that at 0.5 the model would over-flag them.")
    return (f"{chosen} {direction} On the test split, {describe(at_t, f'{t:.3g}')}; "
            f"{describe(at_half, '0.5')}.")


def _volume_item(run: RunReport, data: DataInfo | None, curve: ThresholdCurve | None) -> str:
    points = threshold_curve(run.y_test, run.p_test, np.array([run.threshold, 0.5]), data)
    unit = points.unit

    def at(i: int) -> str:
        precision = points.precision[i]
        precision_text = "—" if not np.isfinite(precision) else f"{precision:.2f}"
        return (f"≈ {points.alerts[i]:,.3g} {unit} (precision {precision_text}, recall "
                f"{points.recall[i]:.2f})")

    scale = ("scaled from the test split's alert rate by the data's transactions per day"
             if points.per_day else
             "the data's time span is not recorded, so volume is per "
             "100,000 transactions instead of per day")
    return (f"<li><strong>Alert volume</strong> at {run.threshold:.3g}: {at(0)}; at 0.5: "
            f"{at(1)} — {scale}. The threshold plot below shows the trade-off at every "
            "threshold.</li>")


def _strategies(runs: Sequence[RunReport], retrained: bool = False) -> str:
    trained = {r.strategy: r.name for r in runs if r.strategy}
    registered = runs[0].strategy
    items = []
    for name, sentence in STRATEGY_TEXT.items():
        tags = []
        if name == registered:
            tags.append("registered")
        elif name in trained:
            tags.append("trained for comparison")
        else:
            tags.append("not trained here" if retrained else
                        "not trained here; <code>train --compare</code> trains all three")
        items.append(f"<li><strong>{_esc(name)}</strong> ({', '.join(tags)}): "
                     f"{_esc(sentence)}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def html_page(
    runs: Sequence[RunReport],
    per_run: Sequence[Mapping[str, str]],
    roc: str,
    prc: str,
    *,
    title: str,
    version: int | None,
    data: DataInfo | None = None,
    registered_reason: str | None = None,
    threshold_png: str | None = None,
    curve: ThresholdCurve | None = None,
    retrained: bool = False,
    notes: Sequence[tuple[str, str]] = (),
) -> str:
    main = runs[0]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"generated {now}" + (f" · model version {version}" if version is not None else "")
    thresholds = "".join(
        f"<li><strong>{_esc(r.name)}</strong>: threshold {_esc(f'{r.threshold:.4f}')} "
        f"(policy {_esc(r.threshold_policy)}, chosen on validation); test rows "
        f"{len(r.y_test):,}, frauds {int(np.sum(r.y_test)):,}"
        + (f"; {_esc(r.stopping())}" if r.stopping() and r is not main else "") + "</li>"
        for r in runs
    )
    summary = (
        _data_items(data, runs) + _registered_item(runs, version, registered_reason, retrained)
        + f"<li><strong>Threshold</strong>: {why_not_half(main)}</li>"
        + _volume_item(main, data, curve)
        + "".join(f"<li><strong>{_esc(k)}</strong>: {_esc(v)}</li>" for k, v in notes))
    if curve is not None and curve.per_day:
        unit_note = "Alerts per day: the share of test rows flagged times the data's " \
                    "transactions per day."
    else:
        unit_note = "Alert volume is per 100,000 transactions (the data's time span is not " \
                    "recorded)."
    threshold_fig = (
        f"<h2>Choosing a threshold: alert volume, precision and recall ({_esc(main.name)}, "
        f"test split)</h2>\n{_img(threshold_png, 'alerts, precision and recall by threshold')}"
        f'\n<p class="note">Moving the threshold right cuts alerts (solid, left axis) and raises '
        f"precision (dashed) at the cost of recall (dotted). {unit_note} Precision is not "
        f"drawn where nothing is flagged.</p>" if threshold_png else "")
    sections = []
    for run, files in zip(runs, per_run, strict=True):
        imgs = "".join(_img(files[k], f"{run.name} {k}") for k in ("loss", "metrics", "cm")
                       if k in files)
        loss_note = ""
        if run.strategy in ("weighted", "oversample") and "loss" in files:
            loss_note = ('<p class="note">Loss: the training loss is computed '
                         + ("with class weights" if run.strategy == "weighted"
                            else "on resampled 50/50 batches")
                         + ", the validation loss on the real class mix without weights, so "
                         "the two curves are on different scales: compare their shapes (does "
                         "validation loss turn up?), not their levels.</p>")
        sections.append(f"<h2>Run: {_esc(run.name)}</h2>\n{loss_note}"
                        f"<div class=\"row\">{imgs}</div>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{_esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="note">{_esc(subtitle)}</p>
<h2>Summary</h2>
<ul class="summary">{summary}</ul>
{threshold_fig}
<h2>Imbalance strategies (fraud is rare: about 1 in 580 transactions in the ULB data)</h2>
{_strategies(runs, retrained)}
<h2>Operating thresholds</h2>
<ul>{thresholds}</ul>
<h2>Metrics</h2>
<p class="note">Of the scores themselves: the same at every threshold (AUC = ROC area, prc = area
under the precision-recall curve, Brier = mean squared error, log loss = cross-entropy).</p>
{_free_table(runs)}
<p class="note">At each run's operating threshold and at the tutorial's 0.5 (a transaction is
flagged when its score is at least the threshold).</p>
{_threshold_table(runs)}
<h2>ROC and precision-recall (train solid, test dashed)</h2>
<div class="row">{_img(roc, "ROC curves")}{_img(prc, "precision-recall curves")}</div>
{chr(10).join(sections)}
</body>
</html>
"""
