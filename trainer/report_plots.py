"""The training report's figures (matplotlib object API on an Agg canvas: no pyplot, no display,
no global figure registry, so rendering is safe from any thread and never leaks figures)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.report_data import (
    HISTORY_METRICS,
    TEST_STYLE,
    TRAIN_LOSS_LABEL,
    TRAIN_STYLE,
    VAL_LOSS_LABEL,
    RunReport,
    ThresholdCurve,
    confusion_counts,
    history_series,
)

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_DPI = 110


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on an Agg canvas (lazy import, not registered with pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Any, path: Path) -> str:
    """Save the figure as PNG, release its memory, and return the file name."""
    fig.savefig(path, format="png")
    fig.clear()
    return path.name


def _mpl(text: str) -> str:
    """Run names as literal matplotlib text (a "$" would otherwise start mathtext)."""
    return text.replace("$", r"\$")


def _plot_train_val(ax: Any, run: RunReport, key: str, color: str,
                    labels: tuple[str, str] = ("train", "val")) -> bool:
    """Draw ``key`` (solid) and ``val_key`` (dashed) against epoch; False if neither exists."""
    drew = False
    for prefix, style, label in (("", "-", labels[0]), ("val_", "--", labels[1])):
        y = history_series(run.history, prefix + key)
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


def plot_loss(run: RunReport, color: str) -> Any | None:
    """Loss vs epoch, train vs val, log scale when all values are positive (as the tutorial)."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    train_label = TRAIN_LOSS_LABEL.get(run.strategy or "", "train loss")
    if not _plot_train_val(ax, run, "loss", color, (train_label, VAL_LOSS_LABEL)):
        return None
    values = [v for k in ("loss", "val_loss") if (v := history_series(run.history, k)) is not None]
    log = all(np.all(v > 0) for v in values)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("binary cross-entropy" + (" (log scale)" if log else ""))
    kept = run.kept_epoch()
    if kept is not None:
        ax.axvline(kept, color="black", ls=":", lw=1, label=f"weights kept (epoch {kept})")
        ax.legend(loc="best", fontsize="small")
    weighted = run.strategy in ("weighted", "oversample")
    ax.set_title(f"{_mpl(run.name)}: loss" + (
        "\n(train and val are different losses: compare shapes, not levels)" if weighted
        else ""), fontsize="medium")
    return fig


def plot_metrics(run: RunReport, color: str) -> Any | None:
    """2x2 grid of prc / precision / recall / auc vs epoch (only the keys that exist)."""
    present = [
        m for m in HISTORY_METRICS
        if history_series(run.history, m) is not None
        or history_series(run.history, "val_" + m) is not None
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
                    if (v := history_series(run.history, k)) is not None]
            ax.set_ylim(min(0.8, min(lows) - 0.02), 1.005)
        else:
            ax.set_ylim(0.0, 1.02)
    fig.suptitle(f"{_mpl(run.name)}: metrics by epoch (train solid, val dashed; precision "
                 "and recall at 0.5)")
    return fig


def threshold_grid(threshold: float) -> np.ndarray:
    """Thresholds for the threshold plot: even on a logit scale between 0.001 and 0.999, plus
    the operating threshold and 0.5 themselves."""
    grid = 1.0 / (1.0 + np.exp(-np.linspace(np.log(1e-3 / (1 - 1e-3)),
                                             np.log((1 - 1e-3) / 1e-3), 400)))
    return np.unique(np.concatenate([grid, [0.5, float(np.clip(threshold, 1e-3, 1 - 1e-3))]]))


def plot_threshold(run: RunReport, curve: ThresholdCurve, color: str) -> Any:
    """Alerts (log, left axis) and precision / recall (right axis) against the threshold (logit
    scale), with the operating threshold and 0.5 marked."""
    fig = _figure(9.5, 4.6)
    ax = fig.add_subplot()
    ax.plot(curve.thresholds, np.maximum(curve.alerts, 1e-3), "-", color=color, lw=2.5,
            label=curve.unit)
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.set_xlim(1e-3, 1 - 1e-3)
    from matplotlib.ticker import NullFormatter

    ticks = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("threshold (logit scale: spreads out the ends near 0 and 1)")
    ax.set_ylabel(curve.unit + " (log scale)")
    ax.grid(True, which="major", alpha=0.3)
    right = ax.twinx()
    right.plot(curve.thresholds, curve.precision, "--", color="#2ca02c", lw=2, label="precision")
    right.plot(curve.thresholds, curve.recall, ":", color="#d62728", lw=2.5, label="recall")
    right.set_ylim(-0.02, 1.02)
    right.set_ylabel("precision / recall")
    for t, style, text in ((run.threshold, "-", f"operating threshold {run.threshold:.3g}"),
                           (0.5, ":", "0.5")):
        ax.axvline(t, color="black", ls=style, lw=1, alpha=0.8)
        left = t > 0.5 or (t < 0.5 and run.threshold > 0.5)  # keep the two labels apart
        ax.annotate(text, (t, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-4 if left else 4, -12 if t == run.threshold else -26),
                    textcoords="offset points", fontsize="small", ha="right" if left else "left",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize="small")
    ax.set_title(f"{_mpl(run.name)}: what a threshold means for alert volume (test split)",
                 fontsize="medium")
    return fig


def share_text(share: float) -> str:
    """A share as a percentage with enough decimals to tell it from 0 % or 100 %: 10 of
    56,000 is "0.018%", not "0.0%"."""
    if share <= 0.0 or share >= 1.0:
        return f"{share:.0%}"
    small = min(share, 1.0 - share) * 100
    decimals = max(1, min(4, 1 - math.floor(math.log10(small))))
    return f"{share * 100:.{decimals}f}%"


def plot_cm(run: RunReport) -> Any:
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
        ax.text(j, i, f"{count:,}\n({share_text(share[i, j])})", ha="center", va="center",
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


def plot_roc(runs: Sequence[RunReport], colors: Sequence[str]) -> Any:
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


def plot_prc(runs: Sequence[RunReport], colors: Sequence[str]) -> Any:
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
