"""Behaviour features of keyed transactions: the spec (declared, hashed, registered with each
keyed model) and the one pure implementation that computes them over a transaction history.

The trainer calls :func:`compute` over a whole history; the stream (next) must give the same
numbers for each event with the labels known at that point. There is no second implementation.

Features, for a transaction of card ``c`` at terminal ``m`` at event time ``t`` (UTC):

* ``weekend``: 1 on Saturday or Sunday; ``night``: 1 before ``night_end_hour`` (06:00).
* per card, for each ``w`` in ``customer_windows_days``: ``customer_count_{w}d`` — the card's
  transactions with time in ``(t - w, t]``, the current one included and, among transactions
  at the same instant, only those before it in history order; ``customer_mean_amount_{w}d`` —
  their mean amount.
* per terminal, for each ``w`` in ``terminal_windows_days``, over the window
  ``(t - D - w, t - D]`` (``D`` = ``delay_days``): ``terminal_count_{w}d`` — the terminal's
  transactions in it; ``terminal_risk_{w}d`` — the share of them *known* to be fraud at ``t``
  (a fraud counts when its ``fraud_known`` time is ``<= t``; 0 for an empty window).

"Known" is point-in-time. From a CSV, a fraud is known ``D`` after it happened
(:func:`known_after_delay`, what ``replay --labels delayed:D`` delivers): every fraud inside a
terminal window is then known. From the stream, a fraud is known when its label was observed, so
a label later than ``D`` is left out of the windows of the transactions before it arrived.

Windows are continuous (as the handbook's rolling windows), not calendar days. Times are compared
in whole microseconds (milliseconds or seconds when a history is too long to key in
microseconds: the unit is the finest that fits in int64; whole-second data is exact in any).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError

SPEC_VERSION = 1
DAY_US = 86_400 * 1_000_000
#: ``fraud_known`` of a transaction not known to be fraud (never counted).
NEVER = np.iinfo(np.int64).max
_KEY_LIMIT = 1 << 62
_UNITS_US = (1, 1_000, 1_000_000)  # microseconds, milliseconds, seconds


@dataclass(frozen=True)
class BehaviourSpec:
    """What the behaviour features are: windows (whole days), the terminal delay (days, > 0) and
    the hour before which a transaction is at night. Model inputs are ``amount`` followed by
    :meth:`feature_names`; an empty window tuple leaves that family out (``amount``, ``weekend``
    and ``night`` alone: the no-behaviour baseline)."""

    customer_windows_days: tuple[int, ...] = (1, 7, 30)
    terminal_windows_days: tuple[int, ...] = (1, 7, 30)
    delay_days: int = 7
    night_end_hour: int = 6
    version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        for name in ("customer_windows_days", "terminal_windows_days"):
            windows = tuple(getattr(self, name))
            if any(type(w) is not int or w < 1 for w in windows) or len(set(windows)) != len(
                    windows):
                raise FraudstreamError(f"{name}: distinct whole days >= 1, got {windows}")
            object.__setattr__(self, name, windows)
        if type(self.delay_days) is not int or self.delay_days < 1:
            raise FraudstreamError(f"delay_days must be a whole number of days >= 1 (a delay of "
                                   f"0 would read labels not yet known), got {self.delay_days}")
        if not 0 <= self.night_end_hour <= 24:
            raise FraudstreamError(f"night_end_hour must be 0..24, got {self.night_end_hour}")

    def feature_names(self) -> tuple[str, ...]:
        names = ["weekend", "night"]
        for w in self.customer_windows_days:
            names += [f"customer_count_{w}d", f"customer_mean_amount_{w}d"]
        for w in self.terminal_windows_days:
            names += [f"terminal_count_{w}d", f"terminal_risk_{w}d"]
        return tuple(names)

    def input_names(self) -> tuple[str, ...]:
        """Model input columns: ``amount`` and the features, in matrix order."""
        return ("amount", *self.feature_names())

    def to_dict(self) -> dict[str, Any]:
        return {"spec_version": self.version,
                "customer_windows_days": list(self.customer_windows_days),
                "terminal_windows_days": list(self.terminal_windows_days),
                "delay_days": self.delay_days, "night_end_hour": self.night_end_hour,
                "inputs": list(self.input_names())}

    def sha256(self) -> str:
        """The spec's identity: sha256 of its canonical JSON (sorted keys, no spaces)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BehaviourSpec:
        if data.get("spec_version") != SPEC_VERSION:
            raise FraudstreamError(
                f"unsupported behaviour spec version {data.get('spec_version')!r}")
        spec = cls(customer_windows_days=tuple(data["customer_windows_days"]),
                   terminal_windows_days=tuple(data["terminal_windows_days"]),
                   delay_days=data["delay_days"], night_end_hour=data["night_end_hour"])
        if list(data.get("inputs", [])) != list(spec.input_names()):
            raise FraudstreamError("behaviour spec inputs do not match its windows")
        return spec


@dataclass(frozen=True)
class History:
    """A transaction history, one entry per transaction, in history order (sorted by event time;
    ties keep their order). ``time_us``: event time, int64 microseconds since the Unix epoch
    (UTC); ``customer``/``terminal``: integer codes (``(n,)`` int64, e.g. from
    ``pandas.factorize``); ``amount``: float64; ``fraud_known``: int64 microseconds at which the
    transaction became known fraud, :data:`NEVER` if it is not (or not yet) known to be."""

    time_us: np.ndarray
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    fraud_known: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time_us)
        if any(len(a) != n for a in (self.customer, self.terminal, self.amount,
                                     self.fraud_known)):
            raise ValueError("history columns must have the same length")
        if n and np.any(np.diff(self.time_us) < 0):
            raise ValueError("history must be sorted by event time")


def known_after_delay(time_us: np.ndarray, fraud: np.ndarray, delay_days: int) -> np.ndarray:
    """``fraud_known`` of a CSV history: a fraud is known ``delay_days`` after it happened."""
    return np.where(np.asarray(fraud) == 1, np.asarray(time_us, dtype=np.int64)
                    + delay_days * DAY_US, NEVER)


def _unit(history: History, spec: BehaviourSpec, codes: int) -> int:
    """The finest time unit (µs) whose (code, time) keys fit in int64."""
    span = int(history.time_us[-1] - history.time_us[0]) if len(history.time_us) else 0
    reach = (spec.delay_days + max((*spec.customer_windows_days, *spec.terminal_windows_days,
                                    0))) * DAY_US
    for unit in _UNITS_US:
        if (codes + 1) * ((span + 2 * reach) // unit + 2) < _KEY_LIMIT:
            return unit
    raise FraudstreamError("history too long to key: split it by card or terminal")


def _keys(codes: np.ndarray, ticks: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Order (by code, then time, stable) and the sorted int64 keys ``code * scale + ticks``."""
    order = np.lexsort((ticks, codes))
    return order, codes[order] * scale + ticks[order]


def _group_cumsum(values: np.ndarray, codes_sorted: np.ndarray) -> np.ndarray:
    """Prefix sums of ``values`` restarting at each code. The running total over every group is
    kept in extended precision, so a group's sums do not carry the rounding of all the groups
    before it (float64 would: ~1e-9 over a few million amounts, and the stream, which sums a
    small history, must match to 1e-9)."""
    total = np.cumsum(values, dtype=np.longdouble)
    starts = np.flatnonzero(np.r_[True, codes_sorted[1:] != codes_sorted[:-1]])
    before = np.r_[np.longdouble(0), total][starts]  # the running total before each group
    return (total - np.repeat(before, np.diff(np.r_[starts, len(values)]))).astype(np.float64)


def compute(spec: BehaviourSpec, history: History) -> np.ndarray:
    """The ``(n, len(spec.feature_names()))`` float64 behaviour features of every transaction of
    ``history``, rows in history order (pure, vectorised)."""
    n = len(history.time_us)
    out = np.zeros((n, len(spec.feature_names())), dtype=np.float64)
    if n == 0:
        return out
    time_us = np.asarray(history.time_us, dtype=np.int64)
    days = time_us // DAY_US  # 1970-01-01 was a Thursday: weekday = (days + 3) % 7, Monday 0
    out[:, 0] = ((days + 3) % 7) >= 5
    out[:, 1] = (time_us - days * DAY_US) < spec.night_end_hour * 3_600_000_000
    customer = np.asarray(history.customer, dtype=np.int64)
    terminal = np.asarray(history.terminal, dtype=np.int64)
    unit = _unit(history, spec, int(max(customer.max(), terminal.max())) + 1)
    reach = (spec.delay_days + max((*spec.customer_windows_days, *spec.terminal_windows_days,
                                    0))) * DAY_US // unit
    ticks = (time_us - time_us[0]) // unit + reach + 1  # >= reach + 1: no key crosses a code
    scale = int(ticks[-1]) + reach + 2
    col = 2
    if spec.customer_windows_days:
        order, keys = _keys(customer, ticks, scale)
        codes = customer[order]
        sums = _group_cumsum(np.asarray(history.amount, dtype=np.float64)[order], codes)
        position = np.arange(n)
        for w in spec.customer_windows_days:
            start = np.searchsorted(keys, keys - w * DAY_US // unit, side="right")
            count = position - start + 1
            previous = np.maximum(start - 1, 0)
            same_group = (start > 0) & (codes[previous] == codes)
            window_sum = sums - np.where(same_group, sums[previous], 0.0)
            out[order, col] = count
            out[order, col + 1] = window_sum / count
            col += 2
    if spec.terminal_windows_days:
        order, keys = _keys(terminal, ticks, scale)
        delay = spec.delay_days * DAY_US // unit
        known = np.asarray(history.fraud_known, dtype=np.int64)[order]
        frauds = np.flatnonzero(known != NEVER)
        # A fraud at s counts for the terminal's transactions at t in [max(s + D, known), s+D+w):
        # +1 over that index range (a difference array), then a running sum.
        late = known[frauds] - time_us[0]
        known_ticks = np.minimum(late // unit + (late % unit > 0) + reach + 1, scale)
        fraud_keys = keys[frauds]
        lo_keys = np.maximum(fraud_keys + delay, fraud_keys - fraud_keys % scale + known_ticks)
        for w in spec.terminal_windows_days:
            end = np.searchsorted(keys, keys - delay, side="right")
            begin = np.searchsorted(keys, keys - delay - w * DAY_US // unit, side="right")
            count = (end - begin).astype(np.float64)
            lo = np.searchsorted(keys, lo_keys, side="left")
            hi = np.searchsorted(keys, fraud_keys + delay + w * DAY_US // unit, side="left")
            keep = lo < hi
            diff = np.bincount(lo[keep], minlength=n + 1) - np.bincount(hi[keep], minlength=n + 1)
            known_frauds = np.cumsum(diff[:n])
            out[order, col] = count
            out[order, col + 1] = np.divide(known_frauds, count, out=np.zeros(n),
                                            where=count > 0)
            col += 2
    return out


CLIP = 5.0


@dataclass(frozen=True)
class BehaviourContract:
    """A keyed model's input contract: its :class:`BehaviourSpec` and the standardise-and-clip
    parameters fitted on its training rows (one ``mean``/``scale`` per
    :meth:`BehaviourSpec.input_names` column). Saved as ``behaviour_spec.json`` with the spec's
    sha256, which loading recomputes and checks."""

    spec: BehaviourSpec
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    clip: float = CLIP

    FILE = "behaviour_spec.json"

    @classmethod
    def fit(cls, spec: BehaviourSpec, inputs: np.ndarray) -> BehaviourContract:
        """Fit on the training rows' model inputs ``(n, len(spec.input_names()))``."""
        mean = inputs.mean(axis=0)
        scale = inputs.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)  # a constant column stays 0
        return cls(spec, tuple(map(float, mean)), tuple(map(float, scale)))

    def transform(self, inputs: np.ndarray) -> np.ndarray:
        """Model inputs ``(n, k)`` → standardised, clipped float32 ``(n, k)``."""
        if inputs.ndim != 2 or inputs.shape[1] != len(self.mean):
            raise ValueError(f"inputs must have shape (n, {len(self.mean)}), got {inputs.shape}")
        scaled = (inputs - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "spec_sha256": self.spec.sha256(),
                "mean": list(self.mean), "scale": list(self.scale), "clip": self.clip}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  expected_sha256: str | None = None) -> BehaviourContract:
        """Read back; FraudstreamError when the spec's recomputed hash differs from the stored
        one or from ``expected_sha256`` (the registry's)."""
        spec = BehaviourSpec.from_dict(data["spec"])
        for against in (data.get("spec_sha256"), expected_sha256):
            if against is not None and against != spec.sha256():
                raise FraudstreamError(f"behaviour spec hash mismatch: {spec.sha256()[:12]}… is "
                                       f"not the registered {str(against)[:12]}…")
        width = len(spec.input_names())
        if len(data["mean"]) != width or len(data["scale"]) != width:
            raise FraudstreamError(f"behaviour contract mean/scale must have {width} entries")
        return cls(spec, tuple(map(float, data["mean"])), tuple(map(float, data["scale"])),
                   float(data["clip"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> BehaviourContract:
        return cls.from_dict(json.loads(path.read_text()), expected_sha256)


def model_inputs(spec: BehaviourSpec, history: History) -> np.ndarray:
    """``(n, len(spec.input_names()))`` float64: ``amount`` then :func:`compute`'s features."""
    return np.column_stack([np.asarray(history.amount, dtype=np.float64),
                            compute(spec, history)])
