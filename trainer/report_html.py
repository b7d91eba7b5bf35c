"""The HTML page of the training report: thresholds, metrics table and the figures."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from trainer.report import TABLE_METRICS, RunReport, format_metric

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
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(src: str, alt: str) -> str:
    return f'<img src="{_esc(src)}" alt="{_esc(alt)}">'


def _metric_value(run: RunReport, split: str, at: str, name: str) -> float | None:
    value = run.metrics.get(split, {}).get(at, {}).get(name)
    return None if value is None else float(value)


def _metrics_table(runs: Sequence[RunReport]) -> str:
    """Rows = metric names; per run four columns: val/test at its threshold, val/test at 0.5."""
    cols = [(split, at) for at in ("threshold", "0.5") for split in ("val", "test")]

    def cls(i: int) -> str:
        return ' class="run"' if i == 0 else ""

    head1 = "".join(f'<th colspan="{len(cols)}" class="run">{_esc(r.name)}</th>' for r in runs)
    head2 = "".join(
        f"<th{cls(i)}>{split} @ {_esc(f'{r.threshold:.3f}') if at == 'threshold' else '0.5'}</th>"
        for r in runs for i, (split, at) in enumerate(cols)
    )
    body = []
    for name in TABLE_METRICS:
        cells = "".join(
            f"<td{cls(i)}>{_esc(format_metric(name, _metric_value(r, split, at, name)))}</td>"
            for r in runs for i, (split, at) in enumerate(cols)
        )
        body.append(f'<tr><th class="metric">{_esc(name)}</th>{cells}</tr>')
    return (
        f'<table>\n<tr><th class="metric" rowspan="2">metric</th>{head1}</tr>\n'
        f"<tr>{head2}</tr>\n" + "\n".join(body) + "\n</table>"
    )


def html_page(
    runs: Sequence[RunReport],
    per_run: Sequence[Mapping[str, str]],
    roc: str,
    prc: str,
    *,
    title: str,
    version: int | None,
) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"generated {now}" + (f" · model version {version}" if version is not None else "")
    thresholds = "".join(
        f"<li><strong>{_esc(r.name)}</strong>: threshold {_esc(f'{r.threshold:.4f}')} "
        f"(policy {_esc(r.threshold_policy)}, chosen on validation); test rows "
        f"{len(r.y_test):,}, frauds {int(np.sum(r.y_test)):,}</li>"
        for r in runs
    )
    sections = []
    for run, files in zip(runs, per_run, strict=True):
        imgs = "".join(_img(files[k], f"{run.name} {k}") for k in ("loss", "metrics", "cm")
                       if k in files)
        sections.append(f"<h2>Run: {_esc(run.name)}</h2>\n<div class=\"row\">{imgs}</div>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{_esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="note">{_esc(subtitle)}</p>
<h2>Operating thresholds</h2>
<ul>{thresholds}</ul>
<p class="note">Why not 0.5: class weighting and oversampling push fraud scores up, so at 0.5
the model over-flags legitimate transactions; the threshold is therefore chosen on the
validation split and the 0.5 figures are shown only for comparison.</p>
<h2>Metrics</h2>
{_metrics_table(runs)}
<h2>ROC and precision-recall (train solid, test dashed)</h2>
<div class="row">{_img(roc, "ROC curves")}{_img(prc, "precision-recall curves")}</div>
{chr(10).join(sections)}
</body>
</html>
"""
