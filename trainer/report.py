"""Training report: PNG figures plus a small self-contained HTML page.

Mirrors the plots of TensorFlow's tutorial "Classification on imbalanced data":
loss and metric curves per run (train solid, validation dashed), a confusion
matrix per run on the test split at the operating threshold, and ROC and
precision-recall curves of every run overlaid on one plot each (train solid,
test dashed, one colour per run, as in the tutorial).

matplotlib is imported lazily and used through its object API with the Agg
canvas (no pyplot, no display, no global figure registry), so rendering is
safe from any thread and never leaks figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.metrics import confusion

#: Metric rows of the HTML table, in display order.
TABLE_METRICS: tuple[str, ...] = (
    "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "auc", "prc", "brier", "log_loss",
)
#: Confusion-matrix counts: formatted as integers.
COUNT_METRICS: frozenset[str] = frozenset({"tp", "fp", "tn", "fn"})
#: Scores that are often tiny on this data: formatted to significant digits.
SIGNIFICANT_METRICS: frozenset[str] = frozenset({"brier", "log_loss"})
#: Training-history metrics drawn in the metric-curve figure (loss has its own figure).
HISTORY_METRICS: tuple[str, ...] = ("prc", "precision", "recall", "auc")
#: Line styles of the overlaid ROC / PR curves (the tutorial draws test dashed).
TRAIN_STYLE = "-"
TEST_STYLE = "--"

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_DPI = 110


@dataclass(frozen=True)
class RunReport:
    """Everything the report needs about one trained run.

    ``history`` is Keras ``History.history`` (one float per epoch per key; any key may be
    missing). ``metrics[split][at][name]`` with split in {"val", "test"}, at in
    {"threshold", "0.5"}. ``y_*`` are int 0/1 labels of shape (n,), ``p_*`` the model's
    scores of shape (n,) in [0, 1].
    """

    name: str
    history: Mapping[str, Sequence[float]]
    threshold: float
    threshold_policy: str
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]]
    y_train: np.ndarray
    p_train: np.ndarray
    y_test: np.ndarray
    p_test: np.ndarray


def format_metric(name: str, value: float | None) -> str:
    """Table text for one metric value.

    Counts as ``56,841``; ``brier`` / ``log_loss`` (often tiny) to 4 significant digits
    (``0.0008123``); every other metric to 4 decimals (``0.9991``); missing as ``—``.
    """
    if value is None or not np.isfinite(value):
        return "—"
    if name in COUNT_METRICS:
        return f"{int(round(value)):,}"
    if name in SIGNIFICANT_METRICS:
        return f"{value:.4g}"
    return f"{value:.4f}"


def render_report(
    out_dir: Path,
    runs: Sequence[RunReport],
    *,
    title: str = "fraudstream training report",
    version: int | None = None,
) -> Path:
    """Write PNGs + index.html into out_dir (created), return the HTML path.

    Files: ``loss_<run>.png``, ``metrics_<run>.png`` (only if the history has such keys),
    ``cm_<run>.png`` per run, and ``roc.png`` / ``prc.png`` with all runs overlaid.
    """
    if not runs:
        raise ValueError("render_report needs at least one run")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slugs = _unique_slugs([r.name for r in runs])
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(runs))]

    per_run: list[dict[str, str]] = []
    for run, slug, color in zip(runs, slugs, colors, strict=True):
        files: dict[str, str] = {}
        for kind, plot in (("loss", _plot_loss), ("metrics", _plot_metrics)):
            fig = plot(run, color)
            if fig is not None:
                files[kind] = _save(fig, out_dir / f"{kind}_{slug}.png")
        files["cm"] = _save(_plot_cm(run), out_dir / f"cm_{slug}.png")
        per_run.append(files)
    roc = _save(_plot_roc(runs, colors), out_dir / "roc.png")
    prc = _save(_plot_prc(runs, colors), out_dir / "prc.png")

    from trainer.report_html import html_page

    page = html_page(runs, per_run, roc, prc, title=title, version=version)
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


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (lazy import, not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> str:
    """Save the figure as PNG, release its memory, and return the file name."""
    fig.savefig(path, format="png")
    fig.clear()
    return path.name


def _mpl(text: str) -> str:
    """Run names as literal matplotlib text (a "$" would otherwise start mathtext)."""
    return text.replace("$", r"\$")


def _series(history: Mapping[str, Sequence[float]], key: str) -> np.ndarray | None:
    values = history.get(key)
    if values is None or len(values) == 0:
        return None
    return np.asarray(values, dtype=float)


def _plot_train_val(ax: Any, run: RunReport, key: str, color: str) -> bool:
    """Draw ``key`` (solid) and ``val_key`` (dashed) against epoch; False if neither exists."""
    drew = False
    for prefix, style, label in (("", "-", "train"), ("val_", "--", "val")):
        y = _series(run.history, prefix + key)
        if y is not None:
            ax.plot(np.arange(1, len(y) + 1), y, style, color=color, lw=2, label=label)
            drew = True
    if drew:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return drew


def _plot_loss(run: RunReport, color: str) -> Any | None:
    """Loss vs epoch, train vs val, log scale when all values are positive (as the tutorial)."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    if not _plot_train_val(ax, run, "loss", color):
        return None
    values = [v for k in ("loss", "val_loss") if (v := _series(run.history, k)) is not None]
    if all(np.all(v > 0) for v in values):
        ax.set_yscale("log")
    ax.set_ylabel("loss")
    ax.set_title(f"{_mpl(run.name)}: loss")
    return fig


def _plot_metrics(run: RunReport, color: str) -> Any | None:
    """2x2 grid of prc / precision / recall / auc vs epoch (only the keys that exist)."""
    present = [
        m for m in HISTORY_METRICS
        if _series(run.history, m) is not None or _series(run.history, "val_" + m) is not None
    ]
    if not present:
        return None
    cols = 2 if len(present) > 1 else 1
    rows = (len(present) + 1) // 2
    fig = _figure(4.2 * cols, 3.0 * rows)
    for i, name in enumerate(present):
        ax = fig.add_subplot(rows, cols, i + 1)
        _plot_train_val(ax, run, name, color)
        ax.set_ylabel(name)
        if name == "auc":
            lows = [np.nanmin(v) for k in ("auc", "val_auc")
                    if (v := _series(run.history, k)) is not None]
            ax.set_ylim(min(0.8, min(lows) - 0.02), 1.005)
        else:
            ax.set_ylim(0.0, 1.02)
    fig.suptitle(f"{_mpl(run.name)}: metrics by epoch (train solid, val dashed)")
    return fig


def confusion_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """2x2 int64 counts ``[[tn, fp], [fn, tp]]`` (rows actual, columns predicted).

    ``y``: labels 0/1, shape (n,); ``p``: scores, shape (n,); predicted fraud iff
    ``p >= threshold`` (:func:`trainer.metrics.confusion`).
    """
    c = confusion(np.asarray(y).ravel(), np.asarray(p, dtype=float).ravel(), threshold)
    return np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=np.int64)


def _plot_cm(run: RunReport) -> Any:
    """Test-split confusion matrix at the run's threshold (predicted fraud iff p >= threshold).

    Cells are coloured by the share of their true class (counts are too imbalanced for a
    linear scale) and annotated with the count and that share.
    """
    cm = confusion_counts(run.y_test, run.p_test, run.threshold)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)

    fig = _figure(4.0, 3.6)
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, f"{count:,}\n({share[i, j]:.1%})", ha="center", va="center",
                color="white" if share[i, j] > 0.5 else "black", fontsize=11)
    ticks = ["legit (0)", "fraud (1)"]
    ax.set_xticks([0, 1], labels=ticks)
    ax.set_yticks([0, 1], labels=ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{_mpl(run.name)}: test @ {run.threshold:.3f}\n(colour = share of actual class)",
                 fontsize="medium")
    return fig


def _two_classes(y: np.ndarray) -> bool:
    return np.unique(np.asarray(y)).size == 2


def _operating_point(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float, float]:
    """(false-positive rate, recall, precision) of ``p >= t`` against labels ``y``."""
    y = np.asarray(y).astype(bool).ravel()
    hit = np.asarray(p, dtype=float).ravel() >= t
    tp = float(np.sum(hit & y))
    fpr = float(np.sum(hit & ~y)) / max(float(np.sum(~y)), 1.0)
    recall = tp / max(float(np.sum(y)), 1.0)
    precision = tp / float(np.sum(hit)) if np.any(hit) else 1.0
    return fpr, recall, precision


def _plot_roc(runs: Sequence[RunReport], colors: Sequence[str]) -> Any:
    """ROC of every run in percent, zoomed on the top-left as in the tutorial.

    x spans 0-20 % false positives; y starts at 80 % true positives, or lower when a run's
    curve or operating point is below that (so weak models stay visible). A dot marks
    each run's operating threshold on its test curve.
    """
    from sklearn.metrics import roc_curve

    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot()
    low = 80.0
    for run, color in zip(runs, colors, strict=True):
        for split, y, p, style in (("train", run.y_train, run.p_train, TRAIN_STYLE),
                                   ("test", run.y_test, run.p_test, TEST_STYLE)):
            if not _two_classes(y):
                continue
            fpr, tpr, _ = roc_curve(np.asarray(y).ravel(), np.asarray(p).ravel())
            ax.plot(100 * fpr, 100 * tpr, style, color=color, lw=2,
                    label=f"{_mpl(run.name)} {split}")
            low = min(low, 100 * float(np.interp(0.2, fpr, tpr)) - 5)
        if _two_classes(run.y_test):
            fpr_t, rec_t, _ = _operating_point(run.y_test, run.p_test, run.threshold)
            ax.plot(100 * fpr_t, 100 * rec_t, "o", color=color, ms=7, mec="black")
            if fpr_t <= 0.2:  # keep the dot in view
                low = min(low, 100 * rec_t - 5)
    ax.set_xlim(-0.5, 20)
    ax.set_ylim(max(low, 0.0), 100.5)
    ax.set_xlabel("False positives [%]")
    ax.set_ylabel("True positives [%]")
    ax.set_title("ROC (dot = operating threshold on test)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _plot_prc(runs: Sequence[RunReport], colors: Sequence[str]) -> Any:
    """Precision (y) against recall (x) for every run; a dot marks the operating threshold."""
    from sklearn.metrics import precision_recall_curve

    fig = _figure(6.5, 5.5)
    ax = fig.add_subplot()
    for run, color in zip(runs, colors, strict=True):
        for split, y, p, style in (("train", run.y_train, run.p_train, TRAIN_STYLE),
                                   ("test", run.y_test, run.p_test, TEST_STYLE)):
            if not _two_classes(y):
                continue
            precision, recall, _ = precision_recall_curve(np.asarray(y).ravel(),
                                                          np.asarray(p).ravel())
            ax.plot(recall, precision, style, color=color, lw=2, label=f"{_mpl(run.name)} {split}")
        if _two_classes(run.y_test):
            _, rec_t, prec_t = _operating_point(run.y_test, run.p_test, run.threshold)
            ax.plot(rec_t, prec_t, "o", color=color, ms=7, mec="black")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title("Precision-recall (dot = operating threshold on test)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize="small")
    return fig
