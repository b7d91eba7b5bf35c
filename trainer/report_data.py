"""The training report's data: what a run is, what the data was, the threshold → alert-volume
curve, and how each metric is written. Pure numpy, no plotting (see :mod:`trainer.report`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.evaluation import confusion

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
        best = history_series(self.history, "val_prc")
        if self.epochs_max is None or not 0 < epochs < self.epochs_max or best is None \
                or not np.isfinite(best).any():
            return None
        return int(np.nanargmax(best)) + 1

    def stopping(self) -> str | None:
        """One sentence on how training ended (None when the history has no epochs)."""
        epochs = max((len(v) for v in self.history.values()), default=0)
        if epochs == 0:
            return None
        best = history_series(self.history, "val_prc")
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


def confusion_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> np.ndarray:
    """2x2 int64 counts ``[[tn, fp], [fn, tp]]`` (rows actual, columns predicted).

    ``y``: labels 0/1, shape (n,); ``p``: scores, shape (n,); predicted fraud iff
    ``p >= threshold`` (:func:`models.evaluation.confusion`).
    """
    c = confusion(np.asarray(y).ravel(), np.asarray(p, dtype=float).ravel(), threshold)
    return np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]], dtype=np.int64)


def history_series(history: Mapping[str, Sequence[float]], key: str) -> np.ndarray | None:
    """One training-history series as float array of shape (epochs,); None when absent or empty."""
    values = history.get(key)
    if values is None or len(values) == 0:
        return None
    return np.asarray(values, dtype=float)
