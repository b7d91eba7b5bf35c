"""Retraining data (pure): events joined with their truth, windowed by event time, and the
out-of-time split.

Shapes and units: ``time_s`` ``(n,)`` float64 seconds since the dataset epoch (the events'
``time_s``; :func:`schemas.events.event_time` puts it on the calendar); ``raw`` ``(n, 29)``
float64 in :data:`schemas.features.RAW_FEATURES` order; ``y`` ``(n,)`` int8 with 1 = fraud.

Labelling (:func:`assemble`): only mature events are used — event time at or before the
maturity cutoff (:func:`store.counts.maturity_cutoff`, the rule counts use). A mature event with
a label takes its current label (the label store's rule, :mod:`store.truth`); an unlabelled one
is genuine. Too recent events are left out, *labelled or not*: their unlabelled ones may still
get a chargeback, and keeping only their labelled ones (early chargebacks, analysts' verdicts on
alerts) would make the most recent slice — the one the gate judges on — a fraud-enriched,
alert-biased sample.

The out-of-time split (:func:`out_of_time_split`) sorts by event time and trains on the oldest
rows, validates on the next and tests on the most recent, as fraud teams evaluate: no training
event is later than any test event.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.events import event_time
from trainer.data import Dataset, Splits

DEFAULT_VAL_FRACTION = 0.16  # the tutorial's shares: 64 % / 16 % / 20 %
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class LabelCounts:
    """How the training set's labels came about (recorded with every retrained model)."""

    events: int  # distinct transactions in the window
    fraud: int  # labelled fraud
    genuine: int  # labelled genuine
    matured: int  # unlabelled and mature: counted as genuine
    left_out: int  # too recent (labelled or not): not used
    duplicates: int = 0  # repeated transaction ids in the log (the first one is kept)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Assembled:
    dataset: Dataset
    ids: np.ndarray  # (n,) transaction ids of the rows, same order
    counts: LabelCounts


def window_mask(time_s: np.ndarray, since_s: float | None, until_s: float | None) -> np.ndarray:
    """``(n,)`` bool: event time in ``[since_s, until_s)`` (None = unbounded)."""
    t = np.asarray(time_s, dtype=np.float64)
    keep = np.ones(len(t), dtype=bool)
    if since_s is not None:
        keep &= t >= since_s
    if until_s is not None:
        keep &= t < until_s
    return keep


def assemble(
    ids: Sequence[str],
    time_s: np.ndarray,
    raw: np.ndarray,
    truth: Mapping[str, int],
    mature_until_s: float,
    *,
    source: str,
) -> Assembled:
    """The labelled training set of the events ``ids``/``time_s``/``raw`` (already windowed):
    ``truth`` maps a transaction id to its current label (0/1). Events up to ``mature_until_s``
    (inclusive) are used — labelled ones with their label, unlabelled ones as genuine —; later
    ones are left out, labelled or not (module docstring). Repeated ids keep their first event.
    ``fraud``/``genuine`` count the labels of the events used. ``sha256`` fingerprints the rows,
    labels and times used."""
    time_s = np.asarray(time_s, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64).reshape(len(time_s), -1)
    _, first = np.unique(np.asarray(ids, dtype=object).astype(str), return_index=True)
    first = np.sort(first)
    duplicates = len(ids) - len(first)
    keep_ids = [ids[i] for i in first]
    label = np.array([truth.get(i, -1) for i in keep_ids], dtype=np.int8)
    use = time_s[first] <= mature_until_s
    rows = first[use]
    used = label[use]
    y = np.where(used >= 0, used, 0).astype(np.int8)
    counts = LabelCounts(
        events=len(first),
        fraud=int(np.sum(used == 1)),
        genuine=int(np.sum(used == 0)),
        matured=int(np.sum(used < 0)),
        left_out=int(np.sum(~use)),
        duplicates=duplicates,
    )
    digest = hashlib.sha256()
    for part in (raw[rows], y, time_s[rows]):
        digest.update(np.ascontiguousarray(part).tobytes())
    dataset = Dataset(
        raw=raw[rows], y=y, time=time_s[rows], sha256=digest.hexdigest(), source=source
    )
    return Assembled(dataset, np.asarray(keep_ids, dtype=object)[use], counts)


@dataclass(frozen=True)
class SliceInfo:
    """One split of the out-of-time split: rows, frauds and its event-time span (seconds)."""

    rows: int
    frauds: int
    first_time_s: float
    last_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "start": event_time(self.first_time_s).isoformat(),
            "end": event_time(self.last_time_s).isoformat(),
        }


@dataclass(frozen=True)
class TimeSplit:
    splits: Splits
    index: dict[str, np.ndarray]  # "train"/"val"/"test" -> row indices into the dataset
    info: dict[str, SliceInfo]


def out_of_time_split(
    dataset: Dataset,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> TimeSplit:
    """Sort ``dataset`` by event time (stable) and cut it: train = the oldest rows, val = the
    next ``val_fraction``, test = the most recent ``test_fraction`` (each at least one row).
    FraudstreamError when the fractions do not leave a training part, or train or validation
    lacks frauds or genuine rows (training needs both)."""
    for name, value in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise FraudstreamError(f"{name} must be between 0 and 1, not {value}")
    if val_fraction + test_fraction >= 1.0:
        raise FraudstreamError(
            f"--val-fraction {val_fraction} + --test-fraction "
            f"{test_fraction} leave nothing to train on"
        )
    n = len(dataset.y)
    n_test, n_val = math.ceil(n * test_fraction), math.ceil(n * val_fraction)
    if n - n_test - n_val < 1:
        raise FraudstreamError(f"{n} labelled rows are too few to split out of time")
    order = np.argsort(dataset.time, kind="stable")
    index = {
        "train": order[: n - n_test - n_val],
        "val": order[n - n_test - n_val : n - n_test],
        "test": order[n - n_test :],
    }
    info = {}
    for name, rows in index.items():
        y, t = dataset.y[rows], dataset.time[rows]
        if name != "test" and (y.all() or not y.any()):
            raise FraudstreamError(
                f"the out-of-time {name} split ({len(y)} rows, {int(y.sum())} frauds) needs "
                "frauds and genuine rows: widen the window, or wait for labels to arrive"
            )
        info[name] = SliceInfo(len(y), int(y.sum()), float(t.min()), float(t.max()))
    splits = Splits(
        train_raw=dataset.raw[index["train"]],
        y_train=dataset.y[index["train"]],
        val_raw=dataset.raw[index["val"]],
        y_val=dataset.y[index["val"]],
        test_raw=dataset.raw[index["test"]],
        y_test=dataset.y[index["test"]],
    )
    return TimeSplit(splits, index, info)
