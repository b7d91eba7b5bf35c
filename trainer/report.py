"""Training report: PNG figures plus a small self-contained HTML page.

Mirrors the plots of TensorFlow's tutorial "Classification on imbalanced data":
loss and metric curves per run (train solid, validation dashed), a confusion
matrix per run on the test split at the operating threshold, and ROC and
precision-recall curves of every run overlaid on one plot each (train solid,
test dashed, one colour per run, as in the tutorial). On top of the tutorial, for
whoever sets the threshold: what data the model saw, which run was registered and
why, why its threshold is not 0.5, and a threshold → alerts per day / precision /
recall plot of the registered run.

matplotlib is imported lazily and used through its object API with the Agg
canvas (no pyplot, no display, no global figure registry), so rendering is
safe from any thread and never leaks figures.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from trainer.report_data import (
    PER_TRANSACTIONS,
    THRESHOLD_FREE_METRICS,
    DataInfo,
    RunReport,
    ThresholdCurve,
    confusion_counts,
    format_metric,
    threshold_curve,
)
from trainer.report_html import html_page
from trainer.report_plots import (
    COLORS,
    plot_cm,
    plot_loss,
    plot_metrics,
    plot_prc,
    plot_roc,
    plot_threshold,
    save,
    threshold_grid,
)

__all__ = [
    "PER_TRANSACTIONS", "THRESHOLD_FREE_METRICS", "DataInfo", "RunReport", "ThresholdCurve",
    "confusion_counts", "format_metric", "render_report", "threshold_curve",
]


def render_report(
    out_dir: Path,
    runs: Sequence[RunReport],
    *,
    title: str = "fraudstream training report",
    version: int | None = None,
    data: DataInfo | None = None,
    registered_reason: str | None = None,
    retrained: bool = False,
    notes: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write PNGs + index.html into out_dir (created), return the HTML path.

    ``runs[0]`` is the registered run (``registered_reason`` says why; by default: the
    ``--strategy`` asked for). Files: ``loss_<run>.png``, ``metrics_<run>.png`` (only if the
    history has such keys), ``cm_<run>.png`` per run, ``roc.png`` / ``prc.png`` with all runs
    overlaid, and ``threshold.png`` (alerts / precision / recall by threshold, registered run).
    """
    if not runs:
        raise ValueError("render_report needs at least one run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slugs = _unique_slugs([r.name for r in runs])
    colors = [COLORS[i % len(COLORS)] for i in range(len(runs))]

    per_run: list[dict[str, str]] = []
    for run, slug, color in zip(runs, slugs, colors, strict=True):
        files: dict[str, str] = {}
        for kind, plot in (("loss", plot_loss), ("metrics", plot_metrics)):
            fig = plot(run, color)
            if fig is not None:
                files[kind] = save(fig, out_dir / f"{kind}_{slug}.png")
        files["cm"] = save(plot_cm(run), out_dir / f"cm_{slug}.png")
        per_run.append(files)
    roc = save(plot_roc(runs, colors), out_dir / "roc.png")
    prc = save(plot_prc(runs, colors), out_dir / "prc.png")
    curve = threshold_curve(runs[0].y_test, runs[0].p_test, threshold_grid(runs[0].threshold),
                            data)
    thr = save(plot_threshold(runs[0], curve, colors[0]), out_dir / "threshold.png")

    page = html_page(runs, per_run, roc, prc, title=title, version=version, data=data,
                     registered_reason=registered_reason, threshold_png=thr, curve=curve,
                     retrained=retrained, notes=notes)
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- helpers


def _unique_slugs(names: Sequence[str]) -> list[str]:
    """File-name-safe, unique slug per run name ("<b>" -> "b", duplicates get -2, -3...)."""
    out: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_").lower() or "run"
        slug, k = base, 2
        while slug in out:
            slug, k = f"{base}-{k}", k + 1
        out.append(slug)
    return out
