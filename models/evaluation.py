"""Evaluation metrics of the tutorial, computed from labels and scores (pure numpy/sklearn).

``y`` is ``(n,)`` 0/1, ``p`` is ``(n,)`` scores in [0, 1]. Names match the tutorial's Keras
metrics: tp, fp, tn, fn, accuracy, precision, recall, auc (ROC), prc (area under PR), brier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def negative_weights(y: np.ndarray, neg_weight: float) -> np.ndarray | None:
    """Per-row weights ``(n,)``: 1 for fraud, ``neg_weight`` for genuine rows — for a sample
    whose genuine rows were subsampled (weight = genuine rows in the population / in the sample),
    so precision-type figures are those of the population. None when ``neg_weight`` is 1."""
    if neg_weight == 1.0:
        return None
    return np.where(np.asarray(y) == 1, 1.0, float(neg_weight))


def recall_at_precision(y: np.ndarray, p: np.ndarray, min_precision: float,
                        neg_weight: float = 1.0) -> float:
    """The largest recall of any rule ``score >= t`` whose precision (genuine rows weighted by
    ``neg_weight``) is at least ``min_precision`` (0.0 when no threshold reaches it, or there is
    no fraud in ``y``)."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y).astype(np.int8)
    if not y.any():
        return 0.0
    precision, recall, _ = precision_recall_curve(y, np.asarray(p, dtype=np.float64),
                                                  sample_weight=negative_weights(y, neg_weight))
    reached = precision[:-1] >= min_precision - 1e-12  # the last point (1, 0) is no threshold
    return float(recall[:-1][reached].max()) if reached.any() else 0.0


def reweighted(y: np.ndarray, p: np.ndarray, threshold: float,
               neg_weight: float) -> dict[str, float]:
    """AUPRC (``prc``) and precision at ``threshold`` with genuine rows weighted by
    ``neg_weight`` (see :func:`negative_weights`); recall and ROC-AUC do not change."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y).astype(np.int8)
    counts = confusion(y, p, threshold)
    flagged = counts["tp"] + counts["fp"] * neg_weight
    both = len(np.unique(y)) == 2
    return {"prc": float(average_precision_score(y, p, sample_weight=negative_weights(
                y, neg_weight))) if both else float("nan"),
            "precision": counts["tp"] / flagged if flagged else 0.0}


def top_k_cards(scores: Mapping[Any, float], k: int) -> list[Any]:
    """The ``k`` cards with the highest score (a card's score: its highest transaction score
    that day), highest first; ties by card, ascending. The one ranking behind every card
    precision figure (the trainer's CP@k and the desk's)."""
    return sorted(scores, key=lambda card: (-scores[card], card))[:k]


def card_precision_top_k(day: np.ndarray, card: np.ndarray, y: np.ndarray, p: np.ndarray,
                         k: int = 100) -> float:
    """Card precision top-k (the handbook's CP@k): each day (``day`` ``(n,)`` ints, in order),
    a card's score is its highest transaction score that day and its truth whether any of its
    transactions that day is fraud; the k highest-scored cards (:func:`top_k_cards`) are
    investigated and the share of them compromised is that day's precision. Cards found
    compromised are left out of the following days (investigators know them). Returns the mean
    over the days (nan: no rows)."""
    import pandas as pd

    frame = pd.DataFrame({"day": day, "card": card, "y": np.asarray(y, dtype=np.int8),
                          "p": np.asarray(p, dtype=np.float64)})
    found: set[Any] = set()
    per_day = []
    for _, rows in frame.groupby("day", sort=True):
        rows = rows[~rows["card"].isin(found)]
        cards = rows.groupby("card").agg(p=("p", "max"), y=("y", "max"))
        top = top_k_cards(dict(zip(cards.index, cards["p"], strict=True)), k)
        hits = [c for c in top if cards.at[c, "y"] == 1]
        per_day.append(len(hits) / k)
        found.update(hits)
    return float(np.mean(per_day)) if per_day else float("nan")
