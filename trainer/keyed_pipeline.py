"""Training on keyed data as the field does it: behaviour features (:mod:`schemas.behaviour`)
computed over the whole history with frauds known ``delay_days`` after they happened, the
handbook's train / delay / test protocol (:mod:`trainer.keyed_protocol`), either family, and
three test metrics — ROC AUC, average precision and card precision top-k (CP@k).

Validation (early stopping, the threshold policy) is a stratified 20 % of the training period.
The registered model carries its :class:`schemas.behaviour.BehaviourContract`
(``behaviour_spec.json``: spec, its sha256, fitted scaling); the manifest and the training
provenance name the input kind (``transaction.v2``) and the spec's hash, which loading checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation import card_precision_top_k, evaluate
from schemas.behaviour import BehaviourContract, BehaviourSpec, model_inputs
from schemas.keyed import INPUT_KEYED
from trainer.keyed_data import KeyedDataset
from trainer.keyed_protocol import Protocol, ProtocolSplit, split
from trainer.pipeline import TrainedRun, fit_family, register_run
from trainer.threshold import DEFAULT_POLICY, choose_threshold, parse_policy

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 100
#: The no-behaviour baseline: amount, weekend and night only.
NO_BEHAVIOUR = {"customer_windows_days": (), "terminal_windows_days": ()}


@dataclass(frozen=True)
class KeyedOptions:
    protocol: Protocol = Protocol()
    behaviour: bool = True  # False: amount and time features only (the baseline)
    top_k: int = DEFAULT_TOP_K
    epochs: int = 100
    seed: int = 42
    policy: str = DEFAULT_POLICY

    def spec(self) -> BehaviourSpec:
        extra: dict[str, Any] = {} if self.behaviour else NO_BEHAVIOUR
        return BehaviourSpec(delay_days=max(self.protocol.delay_days, 1), **extra)


@dataclass(frozen=True)
class Prepared:
    """A keyed dataset ready to train on: its model inputs over the whole history, and the
    protocol's split."""

    dataset: KeyedDataset
    spec: BehaviourSpec
    inputs: np.ndarray  # (n, len(spec.input_names())) float64, history order
    split: ProtocolSplit


def prepare(dataset: KeyedDataset, opts: KeyedOptions) -> Prepared:
    spec = opts.spec()
    inputs = model_inputs(spec, dataset.history(spec.delay_days))
    return Prepared(dataset, spec, inputs, split(dataset, opts.protocol))


def train_keyed_one(prep: Prepared, family: str, strategy: str,
                    opts: KeyedOptions) -> TrainedRun:
    """Fit ``family``/``strategy`` on the training period; evaluate on the test set."""
    from sklearn.model_selection import train_test_split

    parse_policy(opts.policy)
    y = prep.dataset.y
    fit_rows, val_rows = train_test_split(prep.split.train, test_size=0.2,
                                          stratify=y[prep.split.train], random_state=opts.seed)
    contract = BehaviourContract.fit(prep.spec, prep.inputs[fit_rows])
    x_fit, x_val, x_test = (contract.transform(prep.inputs[r])
                            for r in (fit_rows, val_rows, prep.split.test))
    log.info("training %s %s on keyed data: %d train / %d val / %d test rows", family, strategy,
             len(x_fit), len(x_val), len(x_test))
    model, scorer, history = fit_family(family, strategy, x_fit, y[fit_rows], x_val,
                                        y[val_rows], epochs=opts.epochs, seed=opts.seed)
    p_fit, p_val, p_test = (scorer.score(x) for x in (x_fit, x_val, x_test))
    train_days = prep.split.periods.train[1] - prep.split.periods.train[0]
    threshold = choose_threshold(y[val_rows], p_val, opts.policy,
                                 amounts=prep.dataset.amount[val_rows],
                                 per_day=len(prep.split.train) / train_days)
    y_test = y[prep.split.test]
    cp = card_precision_top_k(prep.split.test_day, prep.dataset.customer_id[prep.split.test],
                              y_test, p_test, opts.top_k)
    metrics = {"val": {at: evaluate(y[val_rows], p_val, t) for at, t in
                       (("threshold", threshold), ("0.5", 0.5))},
               "test": {at: {**evaluate(y_test, p_test, t), "card_precision_top_k": cp,
                             "top_k": opts.top_k}
                        for at, t in (("threshold", threshold), ("0.5", 0.5))}}
    return TrainedRun(strategy, model, contract, history, threshold, opts.policy, metrics,
                      y[fit_rows], p_fit, y_test, p_test, family=family, scorer=scorer,
                      x_val=x_val, drift=None)


def provenance(prep: Prepared, opts: KeyedOptions, csv: str | None,
               origin: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's ``training`` record: source (``origin``, e.g. the stream's window and
    labels; default: the CSV), input kind, spec and hash, protocol."""
    return {**(origin or {"source": "csv", "csv": csv}), "split": "protocol",
            "input": INPUT_KEYED,
            "rows": len(prep.dataset.y), "frauds": int(prep.dataset.y.sum()),
            "behaviour_spec": prep.spec.to_dict(), "behaviour_spec_sha256": prep.spec.sha256(),
            "top_k": opts.top_k, **prep.split.info()}


def report_notes(prep: Prepared, run: TrainedRun, opts: KeyedOptions) -> list[tuple[str, str]]:
    test = run.metrics["test"]["threshold"]
    return [("Protocol", prep.split.periods.sentence()
             + f"; {prep.split.left_out_known:,} test-period transactions of cards already "
               "known compromised left out"),
            ("Inputs", f"{', '.join(prep.spec.input_names())} (behaviour spec "
                       f"{prep.spec.sha256()[:12]})"),
            ("Test metrics", f"ROC AUC {test['auc']:.4f}, average precision {test['prc']:.4f}, "
                             f"card precision top-{opts.top_k} "
                             f"{test['card_precision_top_k']:.4f}")]


def register_keyed(engine: Any, run: TrainedRun, prep: Prepared, opts: KeyedOptions, *,
                   csv: str | None, home: Path, training: dict[str, Any] | None = None,
                   report_runs: list[TrainedRun] | None = None) -> tuple[Any, Path]:
    """Register ``run`` with its spec hash in the manifest and the protocol in the report."""
    return register_run(
        engine, run, prep.dataset, home=home, epochs=opts.epochs, report_runs=report_runs,
        training=training or provenance(prep, opts, csv),
        manifest_extra={"input": INPUT_KEYED, "behaviour_spec_sha256": prep.spec.sha256()},
        notes=report_notes(prep, run, opts))


def summary_of(record: Any, run: TrainedRun, prep: Prepared, report: Path) -> dict[str, Any]:
    return {"version": record.version, "stage": record.stage, "family": record.family,
            "strategy": run.strategy, "input": INPUT_KEYED, "threshold": run.threshold,
            "threshold_policy": run.threshold_policy,
            "metrics": {s: run.metrics[s]["threshold"] for s in ("val", "test")},
            "metrics_at_0.5": {s: run.metrics[s]["0.5"] for s in ("val", "test")},
            "protocol": prep.split.periods.describe(),
            "behaviour_spec_sha256": prep.spec.sha256(), "report": str(report),
            "data_sha256": prep.dataset.sha256}


def train_keyed(dataset: KeyedDataset, *, csv: str, family: str, strategy: str,
                opts: KeyedOptions, engine: Any, home: Path) -> dict[str, Any]:
    """``fraudstream train`` on a keyed CSV: one model of ``family``, registered and reported."""
    prep = prepare(dataset, opts)
    run = train_keyed_one(prep, family, strategy, opts)
    record, report = register_keyed(engine, run, prep, opts, csv=csv, home=home)
    return summary_of(record, run, prep, report)
