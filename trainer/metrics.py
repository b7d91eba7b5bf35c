"""Evaluation metrics of the tutorial, computed from labels and scores (pure numpy/sklearn).

``y`` is ``(n,)`` 0/1, ``p`` is ``(n,)`` scores in [0, 1]. Names match the tutorial's Keras
metrics: tp, fp, tn, fn, accuracy, precision, recall, auc (ROC), prc (area under PR), brier.
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "f1",
                "auc", "prc", "brier", "log_loss")


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    """tp/fp/tn/fn of the rule ``score >= threshold``."""
    return count_flags(y, np.asarray(p) >= threshold)


def count_flags(y: np.ndarray, flagged: np.ndarray) -> dict[str, int]:
    """tp/fp/tn/fn of boolean decisions ``flagged`` (n,) against labels ``y`` (n,) 0/1."""
    y = np.asarray(y).astype(bool)
    flagged = np.asarray(flagged, dtype=bool)
    return {
        "tp": int(np.sum(flagged & y)),
        "fp": int(np.sum(flagged & ~y)),
        "tn": int(np.sum(~flagged & ~y)),
        "fn": int(np.sum(~flagged & y)),
    }


def ratios(counts: dict[str, int]) -> dict[str, float]:
    """accuracy, precision, recall and F1 from confusion counts (0.0 where undefined)."""
    tp, fp, tn, fn = counts["tp"], counts["fp"], counts["tn"], counts["fn"]
    total = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / total if total else 0.0, "precision": precision,
            "recall": recall, "f1": f1}


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Every metric of :data:`METRIC_NAMES` at ``threshold`` (threshold-free ones included)."""
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    y = np.asarray(y).astype(np.int8)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    counts = confusion(y, p, threshold)
    both = len(np.unique(y)) == 2
    return {
        **counts,
        **ratios(counts),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "prc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
    }
