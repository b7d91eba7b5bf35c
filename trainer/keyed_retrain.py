"""``fraudstream retrain`` on keyed data (a keyed ``--csv``, or keyed events read back from the
stream: :mod:`trainer.keyed_stream`): each family trained with the protocol and
behaviour features (:mod:`trainer.keyed_pipeline`), registered, and gated against production on
the protocol's test set (:func:`trainer.retrain.decide`, the same gate and rule as the ULB path).

A keyed production model scores the test set with its own spec's features (recomputed when its
windows or delay differ from the candidates'). A ``transaction.v1`` production model cannot
score keyed data: every candidate is then recorded as ``held`` with that reason (promote one by
hand with ``models promote`` once the stream can score keyed events).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.behaviour import model_inputs
from schemas.keyed import INPUT_KEYED
from trainer.gate import figures
from trainer.keyed_data import KeyedDataset
from trainer.keyed_pipeline import (
    KeyedOptions,
    Prepared,
    prepare,
    provenance,
    register_keyed,
    train_keyed_one,
)
from trainer.retrain import RetrainOptions, TestSlice, _production, decide, slice_provenance

log = logging.getLogger(__name__)


def _production_scores(engine: Any, before: Any, prep: Prepared, home: Path) -> Any:
    """(version, threshold, scores on the test set) of a keyed production model."""
    from scorer import load_model

    prod = load_model(engine, before.version, home=home, keyed=True)
    spec = prod.contract.spec
    inputs = prep.inputs if spec == prep.spec else model_inputs(
        spec, prep.dataset.history(spec.delay_days))
    return before.version, prod.threshold, prod.score_raw(inputs[prep.split.test])


def retrain_keyed(opts: RetrainOptions, dataset: KeyedDataset, engine: Any,
                  home: Path, origin: dict[str, Any] | None = None) -> dict[str, Any]:
    """One keyed round on ``dataset``: a keyed CSV, or (``origin``: its provenance) the keyed
    events read back from the stream (:mod:`trainer.keyed_stream`)."""
    kopts = opts.keyed or KeyedOptions(epochs=opts.epochs, seed=opts.seed, policy=opts.policy)
    prep = prepare(dataset, kopts)
    training = provenance(prep, kopts, opts.csv, origin)
    before = _production(engine)
    runs, records = [], []
    for family in opts.families:
        run = train_keyed_one(prep, family, opts.strategy, kopts)
        record, _ = register_keyed(engine, run, prep, kopts, csv=opts.csv, home=home,
                                   training=training)
        log.info("registered keyed %s as v%d (%s)", family, record.version, record.stage)
        runs.append(run)
        records.append(record)
    test_time = dataset.time_us[prep.split.test]
    window = tuple(datetime.fromtimestamp(t / 1e6, UTC) for t in (test_time.min(),
                                                                  test_time.max()))
    slice_ = TestSlice(dataset.y[prep.split.test], window,  # type: ignore[arg-type]
                       {"split": "protocol test", "rows": int(len(prep.split.test)),
                        "frauds": int(dataset.y[prep.split.test].sum())})
    if before is not None and (before.training or {}).get("input") != INPUT_KEYED:
        outcomes = _held_by_v1(engine, records, runs, slice_, before.version)
        verdicts: dict[int, Any] = {}
    else:
        production = None if before is None else _production_scores(engine, before, prep, home)
        origins = slice_provenance(  # a CSV's labels, or the label store's
            engine, opts, dataset.transaction_id[prep.split.test], slice_.y)
        outcomes, verdicts = decide(engine, records, runs, slice_, production, opts, home,
                                    origins)
    after = _production(engine)
    return {
        "source": training["source"], "input": INPUT_KEYED, "training": training,
        "rule": opts.rule.describe(), "promote": opts.promote,
        "production_before": before.version if before else None,
        "production_after": after.version if after else None,
        "candidates": [
            {"version": rec.version, "family": rec.family, "threshold": run.threshold,
             "test": run.metrics["test"]["threshold"], "outcome": outcomes[rec.version],
             "gate": verdicts[rec.version].to_dict() if rec.version in verdicts else None}
            for rec, run in zip(records, runs, strict=True)],
    }


def stream_round(engine: Any, opts: RetrainOptions, home: Path
                 ) -> tuple[dict[str, Any] | None, list[Any]]:
    """Read ``opts.topic`` back; when it holds keyed events, run a keyed round on them
    (:mod:`trainer.keyed_stream`) and return (its summary, the records); else (None, the
    records) for the ``transaction.v1`` round."""
    from stream.cli import reachable_broker
    from stream.readback import read_back
    from trainer.keyed_stream import holds_keyed, keyed_stream_data

    records = read_back(reachable_broker(opts.bootstrap), opts.topic,
                        client_id="fraudstream-retrain")
    if not holds_keyed(records):
        return None, records
    dataset, origin = keyed_stream_data(engine, opts, records)
    return retrain_keyed(opts, dataset, engine, home, origin), records


def _held_by_v1(engine: Any, records: list[Any], runs: list[Any], slice_: TestSlice,
                production: int) -> dict[int, str]:
    from store import registry

    reason = (f"production v{production} takes transaction.v1 events and cannot score keyed "
              "data: a keyed candidate is not compared with it (promote by hand)")
    for record, run in zip(records, runs, strict=True):
        registry.record_decision(
            engine, record.version, "held", decided_by="gate", previous_version=production,
            rule="keyed candidate vs transaction.v1 production", window=slice_.window,
            comparison={"slice": slice_.info, "reason": reason,
                        "candidate": figures(slice_.y, run.p_test, run.threshold)})
    return {r.version: "held" for r in records}


def human(summary: dict[str, Any]) -> list[str]:
    """The keyed round's summary for people."""
    t = summary["training"]
    if t["source"] == "stream":
        w, labels = t["window"], t["labels"]
        lines = [f"retrained from the stream ({t['topic']}, keyed events "
                 f"{w['first_event'][:19]} .. {w['last_event'][:19]}): {t['rows']:,} rows, "
                 f"{t['frauds']:,} frauds" + (" (SYNTHETIC data)" if t.get("synthetic") else "")
                 + f"; behaviour spec {t['behaviour_spec_sha256'][:12]}",
                 f"  mature events: {labels['fraud']:,} labelled fraud, {labels['genuine']:,} "
                 f"labelled genuine, {labels['matured']:,} unlabelled (genuine); "
                 f"{labels['left_out']:,} too recent (left out)"]
    else:
        lines = [f"retrained on keyed {t['csv']}: {t['rows']:,} rows, {t['frauds']:,} frauds; "
                 f"behaviour spec {t['behaviour_spec_sha256'][:12]}"]
    lines += [f"  {name:<17} {p['first_day']} .. {p['last_day']}"
              for name, p in t["protocol"].items()]
    lines.append(f"gate: {summary['rule']}")
    for c in summary["candidates"]:
        test = c["test"]
        why = c["gate"]["reason"] if c["gate"] else c["outcome"]
        lines.append(f"  v{c['version']} {c['family']:<8} test AUC {test['auc']:.4f} AP "
                     f"{test['prc']:.4f} CP@{test['top_k']} {test['card_precision_top_k']:.4f}"
                     f" -> {c['outcome']} ({why})")
    before, after = summary["production_before"], summary["production_after"]
    lines.append(f"production: v{after}" + ("" if before == after else
                                           f" (was {'v' + str(before) if before else 'none'})"))
    return lines
