"""The ``xgboost`` family: gradient-boosted trees, stored in XGBoost's own JSON model format
(``Booster.save_model("model.json")``; never pickle) and explained by XGBoost's exact TreeSHAP
contributions (``predict(..., pred_contribs=True)``): per row, the 29 contributions plus the bias
column sum to the margin (log-odds).

Fitting (:func:`fit`): the same train split and feature contract as the dense net, early stopping
on the validation split's AUPRC, ``scale_pos_weight = neg/pos`` (the class weighting the tutorial
gives the net), modest defaults (:data:`DEFAULT_PARAMS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

MODEL_FILE = "model.json"
MAX_ROUNDS = 300
EARLY_STOPPING_ROUNDS = 30
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": ["logloss", "aucpr"],  # the last one drives early stopping
    "max_depth": 4,
    "eta": 0.1,
    "tree_method": "hist",
    "nthread": 2,
}
#: Threads a loaded model predicts and explains with. One: the scorer predicts micro-batches
#: (tens to 2,000 rows), where OpenMP's second thread saves little, and on a machine whose
#: cores the broker and the other processes share, each parallel region's wait for a thread
#: that is not running cost more: a keyed scorer paced at 2,000 events/s spent 6.2 ms a batch
#: of ~90 events scoring with two threads, 2.8 ms with one (bench/bench_keyed.py, README).
SERVING_THREADS = 1


@dataclass(frozen=True)
class XGBoostScorer:
    """A trained booster behind the family interface (model input ``(n, 29)`` float32)."""

    family: ClassVar[str] = "xgboost"

    booster: Any  # xgboost.Booster

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Log-odds ``(n,)`` float64."""
        out = self.booster.inplace_predict(_input(x), predict_type="margin")
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Fraud probabilities ``(n,)`` float64 (each row depends on that row alone)."""
        out = self.booster.inplace_predict(_input(x))
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """TreeSHAP: ``(phi (n, 29), bias (n,))``, ``phi.sum(1) + bias == margin(x)``."""
        import xgboost

        contribs = self.booster.predict(xgboost.DMatrix(_input(x), nthread=SERVING_THREADS),
                                        pred_contribs=True)
        contribs = np.asarray(contribs, dtype=np.float64)
        return contribs[:, :-1], contribs[:, -1]

    def explain(self, x: np.ndarray) -> np.ndarray:
        return self.contributions(x)[0]

    def save(self, directory: Path) -> list[str]:
        self.booster.save_model(str(Path(directory) / MODEL_FILE))
        return [MODEL_FILE]

    @classmethod
    def load(cls, directory: Path) -> XGBoostScorer:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(Path(directory) / MODEL_FILE))  # JSON: XGBoost's own parser
        booster.set_param({"nthread": SERVING_THREADS})
        return cls(booster=booster)


def _input(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))


def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
        seed: int, max_rounds: int = MAX_ROUNDS,
        params: dict[str, Any] | None = None) -> tuple[XGBoostScorer, dict[str, list[float]]]:
    """Boost up to ``max_rounds`` trees, stopping when validation AUPRC has not improved for
    :data:`EARLY_STOPPING_ROUNDS`; keep the best iteration's trees only.

    Returns (scorer, history) with Keras-style history keys (``loss``/``val_loss`` = log loss,
    ``prc``/``val_prc`` = AUPRC per round) for the report.
    """
    import xgboost

    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    pos = int(np.sum(y_train))
    neg = len(y_train) - pos
    full = {**DEFAULT_PARAMS, "scale_pos_weight": neg / max(pos, 1), "seed": seed,
            **(params or {})}
    train = xgboost.DMatrix(_input(x_train), label=y_train)
    val = xgboost.DMatrix(_input(x_val), label=y_val)
    evals: dict[str, dict[str, list[float]]] = {}
    booster = xgboost.train(full, train, num_boost_round=max_rounds,
                            evals=[(train, "train"), (val, "val")],
                            early_stopping_rounds=EARLY_STOPPING_ROUNDS, evals_result=evals,
                            verbose_eval=False)
    best = int(booster.best_iteration) + 1
    booster = booster[:best]  # only the trees up to the best validation round
    history = {"loss": evals["train"]["logloss"][:best], "val_loss": evals["val"]["logloss"][:best],
               "prc": evals["train"]["aucpr"][:best], "val_prc": evals["val"]["aucpr"][:best]}
    return XGBoostScorer(booster), {k: [float(v) for v in vals] for k, vals in history.items()}
