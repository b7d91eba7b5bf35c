"""The tutorial pipeline end to end: load → split → fit the feature contract on train → fit the
model (the Keras net, or another family of :mod:`models`) → choose the threshold on validation →
evaluate → register (with the family's framework-free scoring form, checked against the fitted
model) → report."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import models
from metrics.drift import DriftReference
from models.dense import DenseScorer
from models.evaluation import evaluate
from schemas.errors import FraudstreamError
from schemas.features import RANGES_FILE, FeatureContract, feature_ranges
from trainer import data as data_mod
from trainer.model import STRATEGIES, fit
from trainer.threshold import DEFAULT_POLICY, choose_threshold, events_per_day, parse_policy

log = logging.getLogger(__name__)

#: The framework-free scoring form must reproduce the fitted model's validation scores to this
#: (max absolute difference), or the model is not registered.
PARITY_TOLERANCE = 1e-5


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
    family: str = "dense"
    scorer: Any = None  # the family's scoring form (models.ScoringFamily)
    x_val: np.ndarray | None = None  # model input of the validation rows (parity check)
    drift: Any = None  # metrics.drift.DriftReference of the train split (drift_reference.json)
    ranges: dict[str, Any] | None = None  # raw features' train-split ranges (feature_ranges.json)

    @property
    def name(self) -> str:
        return self.strategy if self.family == "dense" else f"{self.family}-{self.strategy}"


def fit_family(family: str, strategy: str, x_train: np.ndarray, y_train: np.ndarray,
               x_val: np.ndarray, y_val: np.ndarray, *, epochs: int,
               seed: int) -> tuple[Any, Any, dict[str, list[float]]]:
    """(fitted model, its scoring form, history) of ``family``. ``dense``: the tutorial's Keras
    net with ``strategy``; ``xgboost``: ``weighted`` is ``scale_pos_weight = neg/pos``,
    ``baseline`` is unweighted (``epochs`` does not apply: early stopping decides)."""
    if family == "dense":
        model, history = fit(strategy, x_train, y_train, x_val, y_val, epochs=epochs, seed=seed)
        return model, DenseScorer.from_keras(model), history
    if family == "xgboost":
        from models import xgb

        if strategy not in ("weighted", "baseline"):
            raise FraudstreamError(f"strategy {strategy!r} is for the dense family; xgboost "
                                   "takes weighted (scale_pos_weight = neg/pos) or baseline")
        params = {"scale_pos_weight": 1.0} if strategy == "baseline" else None
        scorer, history = xgb.fit(x_train, y_train, x_val, y_val, seed=seed, params=params)
        return scorer, scorer, history
    models.family_class(family)  # raises: unknown family
    raise FraudstreamError(f"the trainer cannot fit family {family!r}")


def train_one(splits: data_mod.Splits, strategy: str, *, epochs: int, seed: int,
              policy: str = DEFAULT_POLICY, family: str = models.DEFAULT_FAMILY,
              per_day: float | None = None) -> TrainedRun:
    """Fit one family/strategy on ``splits``; the scaler is fitted on the train split only."""
    parse_policy(policy)
    contract = FeatureContract.fit(splits.train_raw)
    x_train, x_val, x_test = (contract.transform(r) for r in
                              (splits.train_raw, splits.val_raw, splits.test_raw))
    log.info("training %s %s: %d train / %d val / %d test rows", family, strategy, len(x_train),
             len(x_val), len(x_test))
    model, scorer, history = fit_family(family, strategy, x_train, splits.y_train, x_val,
                                        splits.y_val, epochs=epochs, seed=seed)
    p_train, p_val, p_test = (scorer.score(x) for x in (x_train, x_val, x_test))
    threshold = choose_threshold(splits.y_val, p_val, policy,  # Amount: the last raw column
                                 amounts=splits.val_raw[:, -1], per_day=per_day)
    metrics = {
        split: {"threshold": evaluate(y, p, threshold), "0.5": evaluate(y, p, 0.5)}
        for split, y, p in (("val", splits.y_val, p_val), ("test", splits.y_test, p_test))
    }
    return TrainedRun(strategy, model, contract, history, threshold, policy, metrics,
                      splits.y_train, p_train, splits.y_test, p_test, family=family,
                      scorer=scorer, x_val=x_val,
                      drift=DriftReference.fit(x_train, p_train),
                      ranges=feature_ranges(splits.train_raw))


def check_parity(run: TrainedRun, directory: Path) -> dict[str, Any]:
    """Load the scoring form just written to ``directory`` the way the scorer will and compare
    its validation scores with the fitted model's own (Keras ``predict`` for the dense net, the
    in-memory booster for XGBoost); refuse (FraudstreamError) beyond :data:`PARITY_TOLERANCE`."""
    assert run.x_val is not None
    loaded = models.load(run.family, directory)
    if run.family == "dense":
        reference = np.asarray(run.model.predict(run.x_val, verbose=0), dtype=np.float64)
        against = "keras model.predict"
    else:
        reference = run.scorer.score(run.x_val)
        against = f"in-memory {run.family} model"
    diff = float(np.max(np.abs(loaded.score(run.x_val) - reference.reshape(-1)), initial=0.0))
    if not diff < PARITY_TOLERANCE:
        raise FraudstreamError(
            f"refusing to register: the {run.family} scoring form differs from the {against} by "
            f"{diff:.3g} on the validation rows (tolerance {PARITY_TOLERANCE:g})")
    return {"family": run.family, "reference": against, "rows": len(run.x_val),
            "max_abs_diff": diff, "tolerance": PARITY_TOLERANCE}


def save_artifacts(run: TrainedRun, directory: Path) -> None:
    """Write the family's scoring form (no pickle; for the dense net also ``model.keras`` for
    retraining), checked against the fitted model (``parity.json``), the feature contract,
    threshold, metrics and history JSON."""
    if run.family == "dense":
        run.model.save(directory / "model.keras")
    run.scorer.save(directory)
    parity = check_parity(run, directory)
    (directory / "parity.json").write_text(json.dumps(parity, indent=2) + "\n")
    run.contract.save(directory / getattr(run.contract, "FILE", "feature_contract.json"))
    (directory / "threshold.json").write_text(json.dumps(
        {"threshold": run.threshold, "policy": run.threshold_policy}, indent=2) + "\n")
    (directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2) + "\n")
    (directory / "history.json").write_text(json.dumps(run.history) + "\n")
    if run.drift is not None:
        run.drift.save(directory)  # drift_reference.json: train-split bins of inputs and scores
    if run.ranges is not None:  # the raw features' train-split ranges, for the desk
        (directory / RANGES_FILE).write_text(json.dumps(run.ranges, indent=2) + "\n")


def register_run(engine: Any, run: TrainedRun, dataset: Any, *, home: Path,
                 epochs: int, report_runs: list[TrainedRun] | None = None,
                 training: dict[str, Any] | None = None,
                 retrained: bool = False,
                 manifest_extra: dict[str, Any] | None = None,
                 notes: Sequence[tuple[str, str]] = ()) -> tuple[Any, Path]:
    """Save ``run``'s artifacts (parity-checked), register them (with ``training``
    provenance and ``manifest_extra`` in the manifest) and render the HTML report of
    ``report_runs`` (default: ``run`` alone; ``notes``: extra summary lines) under
    ``reports/v<version>/`` (``retrained``: a candidate of a ``retrain`` round, which the report
    explains in retrain's terms). The report's synthetic-or-real line comes from ``training``
    (``synthetic``: carried through the stream for a retrained model), else from the file's
    marker. Returns (the :class:`store.registry.ModelRecord`, report path)."""
    from schemas.provenance import is_synthetic
    from store import registry
    from trainer.report import DataInfo, RunReport, render_report

    with tempfile.TemporaryDirectory(dir=home) as staging:
        save_artifacts(run, Path(staging))
        record = registry.register(
            engine, Path(staging), strategy=run.strategy, threshold=run.threshold,
            threshold_policy=run.threshold_policy, metrics=run.metrics,
            data_sha256=dataset.sha256, home=home, family=run.family, training=training,
            feature_ranges=run.ranges, manifest_extra=manifest_extra)
    report = render_report(
        home / "reports" / f"v{record.version}",
        [RunReport(name=r.name, history=r.history, threshold=r.threshold,
                   threshold_policy=r.threshold_policy, metrics=r.metrics, y_train=r.y_train,
                   p_train=r.p_train, y_test=r.y_test, p_test=r.p_test,
                   epochs_max=epochs if r.family == "dense" else None)
         for r in (report_runs or [run])],
        version=record.version,
        data=DataInfo(source=dataset.source, rows=len(dataset.y), frauds=int(dataset.y.sum()),
                      time_span_s=float(dataset.time.max() - dataset.time.min()),
                      synthetic=(training or {}).get("synthetic", is_synthetic(dataset.source)),
                      sha256=dataset.sha256),
        retrained=retrained,
        notes=notes)
    return record, report


def train(csv: str, *, strategy: str = "weighted", compare: bool = False, epochs: int = 100,
          seed: int = 42, policy: str = DEFAULT_POLICY, db: str | None = None,
          home: Path | None = None, family: str = models.DEFAULT_FAMILY,
          keyed: Any = None) -> dict[str, Any]:
    """Train ``family`` (the dense net's three strategies with ``compare``), register
    ``strategy``'s model, report. A keyed CSV (detected from its header) is trained with the
    protocol and behaviour features of ``keyed`` (:class:`trainer.keyed_pipeline.KeyedOptions`;
    default: the handbook's) by :func:`trainer.keyed_pipeline.train_keyed`.

    Returns the ``--json`` summary: version, threshold, metrics (val/test at the chosen
    threshold and at 0.5), report path, and the other runs' test metrics when comparing.
    """
    from schemas.provenance import is_synthetic
    from store import db as store_db
    from store.settings import home as resolve_home

    models.family_class(family)  # an unknown family fails before anything is loaded
    if compare and family != "dense":
        raise FraudstreamError("--compare compares the dense net's strategies: use --family dense")
    home = resolve_home(home)
    loaded = data_mod.load_data(csv)
    if not isinstance(loaded, data_mod.Dataset):
        from trainer.keyed_pipeline import KeyedOptions, train_keyed

        if compare:
            raise FraudstreamError("--compare compares the dense net's strategies on the ULB "
                                   "layout; train each --family on keyed data instead")
        return train_keyed(loaded, csv=csv, family=family, strategy=strategy,
                           opts=keyed or KeyedOptions(epochs=epochs, seed=seed, policy=policy),
                           engine=store_db.connect(db), home=home)
    dataset = loaded
    splits = data_mod.split(dataset, seed=seed)
    engine = store_db.connect(db)  # fail early on a bad database, before training
    strategies = [strategy, *[s for s in STRATEGIES if s != strategy]] if compare else [strategy]
    per_day = events_per_day(dataset.time) if policy.startswith("alerts-per-day") else None
    runs = [train_one(splits, s, epochs=epochs, seed=seed, policy=policy, family=family,
                      per_day=per_day)
            for s in strategies]
    main = runs[0]
    training = {"source": "csv", "csv": csv, "split": "stratified", "rows": len(dataset.y),
                "frauds": int(dataset.y.sum()), "synthetic": is_synthetic(csv)}
    record, report = register_run(engine, main, dataset, home=home, epochs=epochs,
                                  report_runs=runs, training=training)
    summary: dict[str, Any] = {
        "version": record.version,
        "stage": record.stage,
        "family": record.family,
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
