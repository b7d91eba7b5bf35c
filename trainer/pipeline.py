"""The tutorial pipeline end to end: load → split → fit the feature contract on train → fit the
net → choose the threshold on validation → evaluate → register → report."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schemas.features import FeatureContract
from trainer import data as data_mod
from trainer.metrics import evaluate
from trainer.model import STRATEGIES, fit, predict
from trainer.threshold import DEFAULT_POLICY, choose_threshold, parse_policy

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    strategy: str
    model: Any
    contract: FeatureContract
    history: dict[str, list[float]]
    threshold: float
    threshold_policy: str
    metrics: dict[str, dict[str, dict[str, float]]]  # split -> "threshold"|"0.5" -> name -> value
    y_train: np.ndarray
    p_train: np.ndarray
    y_test: np.ndarray
    p_test: np.ndarray


def train_one(splits: data_mod.Splits, strategy: str, *, epochs: int, seed: int,
              policy: str = DEFAULT_POLICY) -> TrainedRun:
    """Fit one strategy on ``splits``; the scaler is fitted on the train split only."""
    parse_policy(policy)
    contract = FeatureContract.fit(splits.train_raw)
    x_train, x_val, x_test = (contract.transform(r) for r in
                              (splits.train_raw, splits.val_raw, splits.test_raw))
    log.info("training %s: %d train / %d val / %d test rows", strategy, len(x_train), len(x_val),
             len(x_test))
    model, history = fit(strategy, x_train, splits.y_train, x_val, splits.y_val,
                         epochs=epochs, seed=seed)
    p_train, p_val, p_test = (predict(model, x) for x in (x_train, x_val, x_test))
    threshold = choose_threshold(splits.y_val, p_val, policy)
    metrics = {
        split: {"threshold": evaluate(y, p, threshold), "0.5": evaluate(y, p, 0.5)}
        for split, y, p in (("val", splits.y_val, p_val), ("test", splits.y_test, p_test))
    }
    return TrainedRun(strategy, model, contract, history, threshold, policy, metrics,
                      splits.y_train, p_train, splits.y_test, p_test)


def save_artifacts(run: TrainedRun, directory: Path) -> None:
    """Write the model (.keras, no pickle), feature contract, threshold and metrics JSON."""
    run.model.save(directory / "model.keras")
    run.contract.save(directory / "feature_contract.json")
    (directory / "threshold.json").write_text(json.dumps(
        {"threshold": run.threshold, "policy": run.threshold_policy}, indent=2) + "\n")
    (directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2) + "\n")
    (directory / "history.json").write_text(json.dumps(run.history) + "\n")


def train(csv: str, *, strategy: str = "weighted", compare: bool = False, epochs: int = 100,
          seed: int = 42, policy: str = DEFAULT_POLICY, db: str | None = None,
          home: Path | None = None) -> dict[str, Any]:
    """Train (all three strategies with ``compare``), register ``strategy``'s model, report.

    Returns the ``--json`` summary: version, threshold, metrics (val/test at the chosen
    threshold and at 0.5), report path, and the other runs' test metrics when comparing.
    """
    from store import db as store_db
    from store import registry
    from store.settings import home as resolve_home
    from trainer.report import RunReport, render_report

    home = resolve_home(home)
    dataset = data_mod.load_csv(csv)
    splits = data_mod.split(dataset, seed=seed)
    engine = store_db.connect(db)  # fail early on a bad database, before training
    strategies = [strategy, *[s for s in STRATEGIES if s != strategy]] if compare else [strategy]
    runs = [train_one(splits, s, epochs=epochs, seed=seed, policy=policy) for s in strategies]
    main = runs[0]
    with tempfile.TemporaryDirectory(dir=home) as staging:
        save_artifacts(main, Path(staging))
        record = registry.register(
            engine, Path(staging), strategy=main.strategy, threshold=main.threshold,
            threshold_policy=policy, metrics=main.metrics, data_sha256=dataset.sha256, home=home)
    report = render_report(
        home / "reports" / f"v{record.version}",
        [RunReport(name=r.strategy, history=r.history, threshold=r.threshold,
                   threshold_policy=r.threshold_policy, metrics=r.metrics, y_train=r.y_train,
                   p_train=r.p_train, y_test=r.y_test, p_test=r.p_test) for r in runs],
        version=record.version)
    summary: dict[str, Any] = {
        "version": record.version,
        "stage": record.stage,
        "strategy": main.strategy,
        "threshold": main.threshold,
        "threshold_policy": policy,
        "metrics": {split: main.metrics[split]["threshold"] for split in ("val", "test")},
        "metrics_at_0.5": {split: main.metrics[split]["0.5"] for split in ("val", "test")},
        "report": str(report),
        "data_sha256": dataset.sha256,
    }
    if compare:
        summary["compare"] = {r.strategy: {"threshold": r.threshold,
                                           "test": r.metrics["test"]["threshold"],
                                           "test_at_0.5": r.metrics["test"]["0.5"]}
                              for r in runs}
    return summary
