"""Choosing the operating threshold on the validation split.

Policies (``--threshold-policy``):

* ``fixed:T`` — use T (the tutorial's 0.5 is ``fixed:0.5``);
* ``max-f1`` — the score that maximises F1 on validation (default: balances ops' alert load
  against missed fraud, and does not depend on the class weights' calibration shift);
* ``precision:P`` — the lowest threshold whose validation precision reaches P (most recall at
  that precision); falls back to the max-precision point if P is never reached;
* ``recall:R`` — the highest threshold whose validation recall is still >= R (fewest alerts).
"""

from __future__ import annotations

import numpy as np

from schemas.errors import FraudstreamError

DEFAULT_POLICY = "max-f1"


def parse_policy(policy: str) -> tuple[str, float | None]:
    """Split ``"precision:0.9"`` into ``("precision", 0.9)``; validate the name and value."""
    name, _, value = policy.partition(":")
    if name == "max-f1" and not value:
        return name, None
    if name in ("fixed", "precision", "recall") and value:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if 0.0 <= number <= 1.0:
            return name, number
    raise FraudstreamError(
        f"bad threshold policy {policy!r}: use fixed:T, max-f1, precision:P or recall:R "
        "with a number in [0, 1]"
    )


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, policy: str = DEFAULT_POLICY) -> float:
    """The operating threshold in [0, 1] from validation labels ``(n,)`` and scores ``(n,)``."""
    from sklearn.metrics import precision_recall_curve

    name, value = parse_policy(policy)
    if name == "fixed":
        assert value is not None
        return value
    precision, recall, thresholds = precision_recall_curve(np.asarray(y_val), np.asarray(p_val))
    # precision/recall have one more entry than thresholds (the final (1, 0) point): drop it.
    precision, recall = precision[:-1], recall[:-1]
    if name == "max-f1":
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        return float(thresholds[int(np.argmax(f1))])
    assert value is not None
    if name == "precision":
        reached = np.flatnonzero(precision >= value)
        index = int(reached[0]) if reached.size else int(np.argmax(precision))
        return float(thresholds[index])
    keep = np.flatnonzero(recall >= value)  # recall decreases as the threshold rises
    return float(thresholds[int(keep[-1])] if keep.size else thresholds[0])
