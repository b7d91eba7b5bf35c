"""Choosing the operating threshold on the validation split.

Policies (``--threshold-policy``):

* ``fixed:T`` — use T (the tutorial's 0.5 is ``fixed:0.5``);
* ``max-f1`` — the score that maximises F1 on validation (default: balances ops' alert load
  against missed fraud, and does not depend on the class weights' calibration shift);
* ``precision:P`` — the lowest threshold whose validation precision reaches P (most recall at
  that precision); falls back to the max-precision point if P is never reached;
* ``recall:R`` — the highest threshold whose validation recall is still >= R (fewest alerts);
* ``alerts-per-day:K`` — analyst capacity: the lowest threshold whose validation flagged share
  × the event rate (events per day, from the data's ``Time`` span) stays <= K alerts a day;
* ``cost:review=C`` — minimise expected cost on validation: each missed fraud costs its amount,
  each alert costs C to review.
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
    if name == "alerts-per-day" or (name == "cost" and value.startswith("review=")):
        try:
            number = float(value.removeprefix("review="))
        except ValueError:
            number = float("nan")
        if number >= 0.0 and np.isfinite(number):
            return name, number
    if name in ("fixed", "precision", "recall") and value:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if 0.0 <= number <= 1.0:
            return name, number
    raise FraudstreamError(
        f"bad threshold policy {policy!r}: use fixed:T, max-f1, precision:P or recall:R "
        "with a number in [0, 1], alerts-per-day:K or cost:review=C with K, C >= 0"
    )


def events_per_day(times_s: np.ndarray) -> float:
    """Events per day seen in ``times_s`` (the ``Time`` column, seconds): rows / span."""
    times = np.asarray(times_s, dtype=np.float64)
    span = float(times.max() - times.min()) if len(times) else 0.0
    if span <= 0:
        raise FraudstreamError("alerts-per-day needs rows spanning some time (Time column)")
    return len(times) / (span / 86_400.0)


def alerts_per_day_threshold(p_val: np.ndarray, capacity: float, per_day: float) -> float:
    """The lowest threshold (a validation score) whose flagged share × ``per_day`` events is at
    most ``capacity`` alerts a day (above every score when even one alert is too many)."""
    scores = np.sort(np.asarray(p_val, dtype=np.float64))[::-1]  # descending
    allowed = int(np.floor(capacity / per_day * len(scores) + 1e-9))  # rows we may flag
    if allowed <= 0:
        return float(np.nextafter(scores[0], np.inf)) if len(scores) else 1.0
    if allowed >= len(scores):
        return float(scores[-1])
    t = scores[allowed - 1]
    if scores[allowed] == t:  # ties: flagging t would exceed capacity; go just above it
        return float(np.nextafter(t, np.inf))
    return float(t)


def cost_threshold(y_val: np.ndarray, p_val: np.ndarray, amounts: np.ndarray,
                   review_cost: float) -> float:
    """The validation score minimising missed fraud amounts + ``review_cost`` per alert."""
    y = np.asarray(y_val).astype(bool)
    p = np.asarray(p_val, dtype=np.float64)
    amount = np.asarray(amounts, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    p, y, amount = p[order], y[order], amount[order]
    last = np.r_[p[1:] != p[:-1], True]  # flag all rows scoring >= p[i]: cut after ties
    caught = np.cumsum(np.where(y, amount, 0.0))[last]
    alerts = np.arange(1, len(p) + 1)[last]
    missed_all = float(amount[y].sum())
    costs = np.r_[missed_all, missed_all - caught + review_cost * alerts]
    candidates = np.r_[np.nextafter(p[0], np.inf) if len(p) else 1.0, p[last]]
    return float(candidates[int(np.argmin(costs))])  # first minimum: fewest alerts


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, policy: str = DEFAULT_POLICY, *,
                     amounts: np.ndarray | None = None,
                     per_day: float | None = None) -> float:
    """The operating threshold in [0, 1] from validation labels ``(n,)`` and scores ``(n,)``.

    ``amounts`` (the validation rows' amounts) is needed by ``cost:``; ``per_day`` (events per
    day in the data) by ``alerts-per-day:``."""
    from sklearn.metrics import precision_recall_curve

    name, value = parse_policy(policy)
    if name == "fixed":
        assert value is not None
        return value
    if name == "alerts-per-day":
        if per_day is None:
            raise FraudstreamError("alerts-per-day needs the event rate (events per day)")
        return alerts_per_day_threshold(p_val, float(value or 0.0), per_day)
    if name == "cost":
        if amounts is None:
            raise FraudstreamError("cost:review=C needs the validation rows' amounts")
        return cost_threshold(y_val, p_val, amounts, float(value or 0.0))
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
