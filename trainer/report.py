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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.metrics import confusion

#: Metric rows of the HTML tables, in display order.
TABLE_METRICS: tuple[str, ...] = (
    "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "auc", "prc", "brier", "log_loss",
)
#: Metrics of the scores alone (the same at every threshold): shown once, not "@ 0.5" again.
THRESHOLD_FREE_METRICS: tuple[str, ...] = ("auc", "prc", "brier", "log_loss")
#: Metrics that depend on the threshold: shown at the operating threshold and at 0.5.
THRESHOLD_METRICS: tuple[str, ...] = tuple(
    m for m in TABLE_METRICS if m not in THRESHOLD_FREE_METRICS)
#: One sentence per imbalance strategy (the run name, or its last "-" part, e.g. xgboost-weighted).
STRATEGY_TEXT: dict[str, str] = {
    "baseline": "no correction for imbalance: every transaction weighs the same in the loss, so "
                "the few frauds barely move it (the tutorial's first model).",
    "weighted": "class weights in the loss: frauds and legitimate transactions carry the same "
                "total weight (one fraud counts as much as ~580 legitimate ones in the ULB "
                "data), so the model cannot ignore them; its scores are then no longer "
                "calibrated probabilities.",
    "oversample": "balanced training batches: frauds are resampled until each batch is half "
                  "fraud, the same idea as weighting done with data; scores are shifted up too.",
}
#: Legend text of the training-loss curve per strategy (validation loss is never weighted).
TRAIN_LOSS_LABEL: dict[str, str] = {
    "baseline": "train loss",
    "weighted": "train loss (class-weighted)",
    "oversample": "train loss (on 50/50 batches)",
}
VAL_LOSS_LABEL = "val loss (unweighted, real class mix)"
#: Alert volume is given per this many transactions when the data's time span is unknown.
PER_TRANSACTIONS = 100_000
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
class DataInfo:
    """What the model was trained on (every field optional: the report says what is unknown).

    ``time_span_s``: seconds between the first and last transaction (``Time``), used to turn
    the test split's alert rate into alerts per day; ``synthetic``: True for a
    ``fraudstream synth`` stand-in, False for real data, None when not recorded.
    """

    source: str | None = None
    rows: int | None = None
    frauds: int | None = None
    time_span_s: float | None = None
    synthetic: bool | None = None
    sha256: str | None = None

    @property
    def days(self) -> float | None:
        if self.time_span_s is None or self.time_span_s <= 0:
            return None
        return self.time_span_s / 86_400.0


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
    #: the ``--epochs`` limit: lets the report say whether early stopping ended training
    epochs_max: int | None = None

    @property
    def strategy(self) -> str | None:
        """The imbalance strategy, from the name (``weighted``, ``xgboost-weighted``...)."""
        last = self.name.rsplit("-", 1)[-1]
        return last if last in STRATEGY_TEXT else None

    def kept_epoch(self) -> int | None:
        """The epoch whose weights early stopping restored (None if it did not fire)."""
        epochs = max((len(v) for v in self.history.values()), default=0)
        best = _series(self.history, "val_prc")
        if self.epochs_max is None or not 0 < epochs < self.epochs_max or best is None \
                or not np.isfinite(best).any():
            return None
        return int(np.nanargmax(best)) + 1

    def stopping(self) -> str | None:
        """One sentence on how training ended (None when the history has no epochs)."""
        epochs = max((len(v) for v in self.history.values()), default=0)
        if epochs == 0:
            return None
        best = _series(self.history, "val_prc")
        if self.name.startswith("xgboost"):  # boosting rounds; only the best round's trees kept
            why = " (the best validation AUPRC; later rounds dropped)" if best is not None else ""
            return f"{epochs} boosting round{'s' if epochs != 1 else ''} kept{why}"
        best_text = ""
        if best is not None and np.isfinite(best).any():
            best_text = f"; best validation AUPRC at epoch {int(np.nanargmax(best)) + 1}"
        if self.epochs_max is None:
            return f"trained {epochs} epoch{'s' if epochs != 1 else ''}{best_text}"
        if epochs < self.epochs_max:
            restored = best_text.replace("; best", ", weights restored from the best")
            return (f"early stopping ended training at epoch {epochs} of {self.epochs_max} "
                    f"(validation AUPRC stopped improving){restored}")
        return f"ran all {epochs} epochs (early stopping did not fire){best_text}"


@dataclass(frozen=True)
class ThresholdCurve:
    """Alert volume, precision and recall of ``p >= t`` for each threshold ``t`` (test split).

    ``alerts`` is per day when the data's time span is known (``per_day``), else per
    :data:`PER_TRANSACTIONS` transactions.
    """

    thresholds: np.ndarray
    alerts: np.ndarray
    precision: np.ndarray  # NaN where nothing is flagged
    recall: np.ndarray
    per_day: bool

    @property
    def unit(self) -> str:
        return "alerts per day" if self.per_day else f"alerts per {PER_TRANSACTIONS:,} transactions"


def threshold_curve(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray,
                    data: DataInfo | None = None) -> ThresholdCurve:
    """Flagged share, precision and recall of ``p >= t`` for each ``t``; the flagged share is
    scaled to alerts per day (``data.rows / data.days`` transactions a day) when ``data`` has
    rows and a time span, else to alerts per :data:`PER_TRANSACTIONS` transactions."""
    y = np.asarray(y).astype(bool).ravel()
    p = np.asarray(p, dtype=float).ravel()
    t = np.asarray(thresholds, dtype=float)
    all_sorted, fraud_sorted = np.sort(p), np.sort(p[y])
    flagged = len(p) - np.searchsorted(all_sorted, t, side="left")
    caught = len(fraud_sorted) - np.searchsorted(fraud_sorted, t, side="left")
    share = flagged / max(len(p), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, caught / np.maximum(flagged, 1), np.nan)
    recall = caught / max(len(fraud_sorted), 1)
    days = data.days if data is not None else None
    if days is not None and data is not None and data.rows:
        return ThresholdCurve(t, share * data.rows / days, precision, recall, per_day=True)
    return ThresholdCurve(t, share * PER_TRANSACTIONS, precision, recall, per_day=False)


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
    data: DataInfo | None = None,
    registered_reason: str | None = None,
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
    curve = threshold_curve(runs[0].y_test, runs[0].p_test, _threshold_grid(runs[0].threshold),
                            data)
    thr = _save(_plot_threshold(runs[0], curve, colors[0]), out_dir / "threshold.png")

    from trainer.report_html import html_page

    page = html_page(runs, per_run, roc, prc, title=title, version=version, data=data,
                     registered_reason=registered_reason, threshold_png=thr, curve=curve)
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


def _plot_train_val(ax: Any, run: RunReport, key: str, color: str,
                    labels: tuple[str, str] = ("train", "val")) -> bool:
    """Draw ``key`` (solid) and ``val_key`` (dashed) against epoch; False if neither exists."""
    drew = False
    for prefix, style, label in (("", "-", labels[0]), ("val_", "--", labels[1])):
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
    train_label = TRAIN_LOSS_LABEL.get(run.strategy or "", "train loss")
    if not _plot_train_val(ax, run, "loss", color, (train_label, VAL_LOSS_LABEL)):
        return None
    values = [v for k in ("loss", "val_loss") if (v := _series(run.history, k)) is not None]
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
    fig.suptitle(f"{_mpl(run.name)}: metrics by epoch (train solid, val dashed; precision "
                 "and recall at 0.5)")
    return fig


def _threshold_grid(threshold: float) -> np.ndarray:
    """Thresholds for the threshold plot: even on a logit scale between 0.001 and 0.999, plus
    the operating threshold and 0.5 themselves."""
    grid = 1.0 / (1.0 + np.exp(-np.linspace(np.log(1e-3 / (1 - 1e-3)),
                                             np.log((1 - 1e-3) / 1e-3), 400)))
    return np.unique(np.concatenate([grid, [0.5, float(np.clip(threshold, 1e-3, 1 - 1e-3))]]))


def _plot_threshold(run: RunReport, curve: ThresholdCurve, color: str) -> Any:
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
