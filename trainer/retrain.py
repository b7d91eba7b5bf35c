"""One retraining round (the I/O edge of ``fraudstream retrain``): what the system saw → a
labelled, out-of-time split → a candidate per family → the gate against production → recorded
decisions.

1. **Data.** Transaction events read back from the transactions topic (Kafka is the log of
   events; :func:`stream.readback.read_back`, decoded as the scorer decodes them), windowed by
   event time, joined with the label store (:func:`store.truth.truth_of`: the latest label wins)
   and labelled by :func:`trainer.oot.assemble` — or a ``creditcard.csv`` (``Class`` labels).
2. **Split** out of time (:func:`trainer.oot.out_of_time_split`): oldest train, next validate,
   most recent test.
3. **Candidates**: every requested family is trained (:func:`trainer.pipeline.train_one`) and
   registered with its ``training`` provenance (source, event-time window, label counts, split).
4. **Gate** (:mod:`trainer.gate`): each candidate and the production model score the same test
   slice; the best passing candidate is promoted (``promote="auto"``); every decision — promoted,
   rejected or held — is recorded in ``promotions`` (:mod:`store.registry`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

import models
from schemas.errors import FraudstreamError
from schemas.events import dataset_seconds, event_time
from schemas.times import Horizon, as_utc
from trainer import oot
from trainer.gate import GateRule, Verdict, figures, judge, winner
from trainer.gate_evidence import Provenance, label_provenance
from trainer.threshold import DEFAULT_POLICY, events_per_day, parse_policy

log = logging.getLogger(__name__)

#: A retraining round trains every family by default and lets the gate choose among them
#: (``train`` keeps the tutorial's dense net as its default).
RETRAIN_FAMILIES: tuple[str, ...] = tuple(models.FAMILIES)


def _deployment_window_s() -> float:
    from store.settings import maturity

    return maturity().window.total_seconds()


@dataclass(frozen=True)
class RetrainOptions:
    """One round's settings (the ``retrain`` flags). Times are event times (aware, UTC);
    ``days`` is a window ending at the newest event; ``mature_after_s`` is the label window in
    seconds."""

    families: tuple[str, ...] = RETRAIN_FAMILIES
    csv: str | None = None
    bootstrap: str | None = None
    topic: str = "transactions"
    since: datetime | None = None
    until: datetime | None = None
    days: float | None = None
    mature_after_s: float = field(default_factory=_deployment_window_s)
    val_fraction: float = oot.DEFAULT_VAL_FRACTION
    test_fraction: float = oot.DEFAULT_TEST_FRACTION
    strategy: str = "weighted"
    epochs: int = 100
    seed: int = 42
    policy: str = DEFAULT_POLICY
    promote: Literal["auto", "never"] = "auto"
    rule: GateRule = field(default_factory=GateRule)
    db: str | None = None
    home: Path | None = None
    keyed: Any = None  # trainer.keyed_pipeline.KeyedOptions for a keyed --csv (None: defaults)

    def check(self) -> None:
        """FraudstreamError for contradictory or out-of-range settings (before any work)."""
        if not self.families:
            raise FraudstreamError("--family: name at least one model family")
        for family in self.families:
            models.family_class(family)
        if len(set(self.families)) != len(self.families):
            raise FraudstreamError("--family: each family once")
        if self.days is not None and (self.since is not None or self.until is not None):
            raise FraudstreamError(
                "--days is a window ending at the newest event: use it, or "
                "--since/--until, not both"
            )
        if self.days is not None and not self.days > 0:
            raise FraudstreamError(f"--days must be > 0, not {self.days}")
        if self.since and self.until and self.since >= self.until:
            raise FraudstreamError(
                f"--since {self.since.isoformat()} is not before --until {self.until.isoformat()}"
            )
        if self.mature_after_s < 0:
            raise FraudstreamError("--mature-after must be >= 0")
        if self.epochs < 1:
            raise FraudstreamError("--epochs must be >= 1")
        if self.promote not in ("auto", "never"):
            raise FraudstreamError("--promote must be auto or never")
        parse_policy(self.policy)


def _bounds(time_s: np.ndarray, opts: RetrainOptions) -> tuple[float | None, float | None]:
    """The event-time window ``[since_s, until_s)`` in dataset seconds (None = open)."""
    if opts.days is not None:
        newest = float(time_s.max()) if len(time_s) else 0.0
        return newest - opts.days * 86_400.0, None
    return (
        None if opts.since is None else dataset_seconds(opts.since),
        None if opts.until is None else dataset_seconds(opts.until),
    )


def stream_data(engine: Any, opts: RetrainOptions, records: list[Any] | None = None
                ) -> tuple[oot.Assembled, dict[str, Any]]:
    """The labelled training set from the transactions topic (its ``records`` when already
    read) ⋈ the label store, and its provenance (window, clock, maturity, dead letters)."""
    from schemas.provenance import synthetic_share
    from scorer import decode_batch
    from store.counts import maturity_cutoff, stream_clock
    from store.truth import truth_of
    from stream.cli import reachable_broker
    from stream.readback import read_back

    records = records if records is not None else read_back(
        reachable_broker(opts.bootstrap), opts.topic, client_id="fraudstream-retrain")
    batch = decode_batch(records, Horizon.from_wall_clock())  # what the scorer would accept
    if not batch.events:
        raise FraudstreamError(
            f"topic '{opts.topic}' holds no valid transaction event "
            f"({len(records)} records, {len(batch.dead)} malformed)"
        )
    time_s = batch.column("time_s")
    since_s, until_s = _bounds(time_s, opts)
    keep = oot.window_mask(time_s, since_s, until_s)
    if not keep.any():
        raise FraudstreamError(f"no event of '{opts.topic}' falls in the window")
    ids = [e["transaction_id"] for e, k in zip(batch.events, keep, strict=True) if k]
    clock = stream_clock(engine)
    as_of = as_utc(clock) if clock is not None else event_time(float(time_s.max()))
    cutoff = maturity_cutoff(as_of, timedelta(seconds=opts.mature_after_s))
    assembled = oot.assemble(
        ids,
        time_s[keep],
        batch.raw_matrix()[keep],
        truth_of(engine, ids),
        dataset_seconds(cutoff),
        source=f"stream:{opts.topic}",
    )
    synthetic, marked = synthetic_share(
        [r for r, k in zip(batch.records, keep, strict=True) if k])
    provenance = {
        "source": "stream",
        "topic": opts.topic,
        "synthetic": synthetic,  # the events' fraudstream.data header (schemas.provenance)
        "synthetic_events": marked,
        "records_read": len(records),
        "dead_lettered": len(batch.dead),
        "as_of": as_of.isoformat(),
        "mature_after_s": opts.mature_after_s,
        "mature_until": cutoff.isoformat(),
        **_window_dict(since_s, until_s, time_s[keep]),
    }
    return assembled, provenance


def csv_data(opts: RetrainOptions, data: Any = None) -> tuple[oot.Assembled, dict[str, Any]]:
    """The labelled training set from ``opts.csv`` (every row labelled by ``Class``; ``data``:
    the file already loaded)."""
    from schemas.provenance import is_synthetic
    from trainer.data import load_csv

    assert opts.csv is not None
    data = data if data is not None else load_csv(opts.csv)
    since_s, until_s = _bounds(data.time, opts)
    keep = np.flatnonzero(oot.window_mask(data.time, since_s, until_s))
    if not len(keep):
        raise FraudstreamError(f"no row of {opts.csv} falls in the window")
    ids = [str(i) for i in keep]
    truth = {tid: int(label) for tid, label in zip(ids, data.y[keep], strict=True)}
    assembled = oot.assemble(
        ids, data.time[keep], data.raw[keep], truth, float("inf"), source=opts.csv
    )
    return assembled, {
        "source": "csv",
        "csv": opts.csv,
        "synthetic": is_synthetic(opts.csv),
        "csv_sha256": data.sha256,
        **_window_dict(since_s, until_s, data.time[keep]),
    }


def _window_dict(
    since_s: float | None, until_s: float | None, time_s: np.ndarray
) -> dict[str, Any]:
    def iso(seconds: float | None) -> str | None:
        return None if seconds is None else event_time(seconds).isoformat()

    return {
        "window": {
            "since": iso(since_s),
            "until": iso(until_s),
            "first_event": iso(float(time_s.min())),
            "last_event": iso(float(time_s.max())),
        }
    }


def _production(engine: Any) -> Any:
    from store import registry

    try:
        return registry.get(engine, "production")
    except FraudstreamError:
        return None


def slice_provenance(engine: Any, opts: RetrainOptions, ids: np.ndarray,
                     y: np.ndarray) -> Provenance:
    """Where the labels of the judging slice (transactions ``ids``, labels ``y``) came from: the
    label store's sources, and analyst labels contradicting independent truth
    (:func:`store.truth.label_origins`); a CSV's rows are all labelled by its ``Class``."""
    from store.truth import label_origins

    rule = opts.rule
    shares = {"max_analyst_share": rule.max_analyst_share,
              "max_contradicted_share": rule.max_contradicted_share}
    if opts.csv:
        return label_provenance(y, ["dataset"] * len(y), **shares)
    origins = label_origins(engine, ids)
    found = [origins.get(tid) for tid in ids]
    return label_provenance(y, [o[0] if o else None for o in found],
                            np.array([bool(o and o[1]) for o in found]), **shares)


def gate_round(
    engine: Any,
    records: list[Any],
    runs: list[Any],
    tsplit: oot.TimeSplit,
    before: Any,
    opts: RetrainOptions,
    home: Path,
    provenance: Provenance | None = None,
) -> tuple[dict[int, str], dict[int, Verdict]]:
    """Judge this round's registered candidates (``records``, fitted ``runs``) against the
    production model ``before`` (None: there was none, so the first candidate became production
    on registration and the others are judged against it) on the test slice, whose labels'
    origins are ``provenance``; promote the winner with ``promote="auto"``; record every
    decision (a held verdict says why). Returns (outcome, verdict) by version."""
    from scorer import load_model

    test = tsplit.info["test"]
    window = (event_time(test.first_time_s), event_time(test.last_time_s))
    slice_ = TestSlice(tsplit.splits.y_test, window, {"split": "test", **test.to_dict()})
    if before is None:  # the first registered model became production on registration
        return decide(engine, records, runs, slice_, None, opts, home, provenance)
    prod = load_model(engine, before.version, home=home)
    return decide(engine, records, runs, slice_,
                  (before.version, prod.threshold, prod.score_raw(tsplit.splits.test_raw)), opts,
                  home, provenance)


@dataclass(frozen=True)
class TestSlice:
    """The slice the gate compares on: labels ``(n,)``, event-time window, and its description."""

    y: np.ndarray
    window: tuple[datetime, datetime]
    info: dict[str, Any]


def decide(engine: Any, records: list[Any], runs: list[Any], slice_: TestSlice,
           production: tuple[int, float, np.ndarray] | None, opts: RetrainOptions,
           home: Path | None, provenance: Provenance | None = None,
           ) -> tuple[dict[int, str], dict[int, Verdict]]:
    """The gate's decisions on ``slice_`` (its labels' origins: ``provenance``): each candidate
    (``records``, fitted ``runs`` with their test scores) against ``production`` = (version,
    threshold, its scores on the slice); None: the first candidate became production on
    registration (recorded as such) and the others are judged against it. Promotes the winner
    with ``promote="auto"``; records every decision (a held verdict says why). Returns (outcome,
    verdict) by version."""
    from store import registry

    y_test, window, slice_info = slice_.y, slice_.window, slice_.info
    rule = opts.rule.describe()
    outcomes: dict[int, str] = {}
    verdicts: dict[int, Verdict] = {}
    if production is None:
        first = records[0]
        registry.record_decision(
            engine,
            first.version,
            "promoted",
            decided_by="gate",
            previous_version=None,
            rule="no production model: the first registered model is production",
            window=window,
            comparison={
                "slice": slice_info,
                "candidate": figures(y_test, runs[0].p_test, runs[0].threshold),
            },
        )
        outcomes[first.version] = "promoted"
        prod_version, prod_threshold, p_prod = first.version, runs[0].threshold, runs[0].p_test
        challengers = list(zip(records[1:], runs[1:], strict=True))
    else:
        prod_version, prod_threshold, p_prod = production
        challengers = list(zip(records, runs, strict=True))
    judged = [
        judge(
            y_test,
            run.p_test,
            p_prod,
            candidate_threshold=run.threshold,
            production_threshold=prod_threshold,
            rule=opts.rule,
            provenance=provenance,
        )
        for _, run in challengers
    ]
    best = winner(judged)
    for i, ((record, _), verdict) in enumerate(zip(challengers, judged, strict=True)):
        comparison = {"slice": slice_info, "production_version": prod_version, **verdict.to_dict()}
        verdicts[record.version] = verdict
        if i == best and opts.promote == "auto":
            registry.promote(
                engine,
                record.version,
                decided_by="gate",
                rule=rule,
                window=window,
                comparison=comparison,
                home=home,
            )
            outcomes[record.version] = "promoted"
            continue
        outcome = "rejected" if verdict.status == "failed" else "held"
        if verdict.status == "held":
            comparison["held_because"] = verdict.reason
        elif verdict.passed and opts.promote == "never":
            comparison["held_because"] = "--promote never"
        elif verdict.passed and best is not None:  # another candidate of the round won
            comparison["held_because"] = f"v{challengers[best][0].version} had the higher AUPRC"
        registry.record_decision(
            engine,
            record.version,
            outcome,
            decided_by="gate",
            previous_version=prod_version,
            rule=rule,
            window=window,
            comparison=comparison,
        )
        outcomes[record.version] = outcome
    return outcomes, verdicts


def retrain(opts: RetrainOptions) -> dict[str, Any]:
    """Run one round; returns its summary (``--json``): data provenance, split, each
    candidate's version, test figures and gate outcome, and production before and after."""
    from store import db as store_db
    from store.settings import home as resolve_home
    from trainer.data import Dataset, load_data
    from trainer.pipeline import register_run, train_one

    opts.check()
    home = resolve_home(opts.home)
    engine = store_db.connect(opts.db)
    from trainer.keyed_retrain import retrain_keyed, stream_round

    loaded = load_data(opts.csv) if opts.csv else None
    if loaded is not None and not isinstance(loaded, Dataset):  # a keyed CSV
        return retrain_keyed(opts, loaded, engine, home)
    keyed, records = (None, None) if opts.csv else stream_round(engine, opts, home)
    if keyed is not None:  # the stream holds keyed events: a keyed round
        return keyed
    assembled, provenance = csv_data(opts, loaded) if opts.csv else stream_data(engine, opts,
                                                                                records)
    data = assembled.dataset
    tsplit = oot.out_of_time_split(
        data, val_fraction=opts.val_fraction, test_fraction=opts.test_fraction
    )
    training = {
        **provenance,
        "labels": assembled.counts.to_dict(),
        "rows": len(data.y),
        "frauds": int(data.y.sum()),
        "split": {
            "kind": "out-of-time",
            "val_fraction": opts.val_fraction,
            "test_fraction": opts.test_fraction,
            **{k: v.to_dict() for k, v in tsplit.info.items()},
        },
    }
    per_day = events_per_day(data.time) if opts.policy.startswith("alerts-per-day") else None
    before = _production(engine)
    runs, records = [], []
    for family in opts.families:
        run = train_one(
            tsplit.splits,
            opts.strategy,
            epochs=opts.epochs,
            seed=opts.seed,
            policy=opts.policy,
            family=family,
            per_day=per_day,
        )
        record, _ = register_run(
            engine, run, data, home=home, epochs=opts.epochs, training=training, retrained=True
        )
        log.info("registered %s as v%d (%s)", family, record.version, record.stage)
        runs.append(run)
        records.append(record)

    slice_labels = slice_provenance(engine, opts, assembled.ids[tsplit.index["test"]],
                                    tsplit.splits.y_test)
    outcomes, verdicts = gate_round(engine, records, runs, tsplit, before, opts, home,
                                    slice_labels)
    after = _production(engine)
    return {
        "source": provenance["source"],
        "training": training,
        "rule": opts.rule.describe(),
        "promote": opts.promote,
        "production_before": before.version if before else None,
        "production_after": after.version if after else None,
        "candidates": [
            {
                "version": rec.version,
                "family": rec.family,
                "threshold": run.threshold,
                "test": run.metrics["test"]["threshold"],
                "outcome": outcomes[rec.version],
                "gate": verdicts[rec.version].to_dict() if rec.version in verdicts else None,
            }
            for rec, run in zip(records, runs, strict=True)
        ],
    }
