"""``fraudstream split``: a creditcard.csv-shaped file cut by time into the rows a model is trained
on and the rows that are replayed and scored.

A model graded on the rows it was trained on looks better than it is. So `make demo` and the
compose simulation train on the earlier share of the rows by ``Time`` (``train.csv``) and replay
only the later rest (``replay.csv``), and say which rows went where (by ``Time``, or ``TX_DATETIME``
in the keyed layout). Rows keep their text exactly;
a file not sorted by ``Time`` is sorted (stably) first; a row whose ``Time`` cannot be read stays
next to the row before it (the replay reports it as invalid). A synthetic stand-in's marker is
copied to both parts (:mod:`schemas.provenance`).
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.events import dataset_seconds, event_time
from schemas.provenance import is_synthetic, marker
from schemas.times import as_utc

DEFAULT_TRAIN_SHARE = 0.5


@dataclass(frozen=True)
class Part:
    """Rows ``first_row``..``last_row`` (1-based, in time order) written to ``path``."""

    path: str
    first_row: int
    last_row: int
    first_time_s: float | None
    last_time_s: float | None

    @property
    def rows(self) -> int:
        return self.last_row - self.first_row + 1

    def line(self, role: str, what: str) -> str:
        span = ("" if self.first_time_s is None or self.last_time_s is None else
                f", event time {event_time(self.first_time_s):%Y-%m-%d %H:%M:%S} .. "
                f"{event_time(self.last_time_s):%Y-%m-%d %H:%M:%S}")
        return (f"  {role:<6} rows {self.first_row:,}..{self.last_row:,} ({self.rows:,} rows"
                f"{span}) -> {self.path}: {what}")


@dataclass(frozen=True)
class FileSplit:
    source: str
    rows: int
    share: float
    sorted_by_time: bool  # False: the file was not in Time order and was sorted first
    synthetic: bool | None
    train: Part
    replay: Part

    def lines(self) -> list[str]:
        order = "in Time order" if self.sorted_by_time else "sorted by Time (it was not)"
        return [f"split {self.source} by time: {self.rows:,} data rows, {order}; the first "
                f"{self.share:.0%} train, the rest are replayed"
                + (" (SYNTHETIC data)" if self.synthetic else ""),
                self.train.line("train", "the model is trained on these"),
                self.replay.line("replay", "replayed and scored, never trained on")]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_order(times: list[float | None]) -> tuple[np.ndarray, bool]:
    """The stable order of rows by time (a row without a time keeps to the row before it) and
    whether the rows already were in that order (pure)."""
    filled = np.array([np.nan if t is None else t for t in times], dtype=np.float64)
    known = ~np.isnan(filled)
    if len(filled) and not known.all():
        last = np.maximum.accumulate(np.where(known, np.arange(len(filled)), -1))
        filled = np.where(last >= 0, filled[np.maximum(last, 0)], -np.inf)
    order = np.argsort(filled, kind="stable")
    return order, bool(np.all(order == np.arange(len(order))))


def _time(value: list[str], index: int, keyed: bool) -> float | None:
    """A row's event time in dataset seconds: the ULB ``Time``, or the keyed ``TX_DATETIME``."""
    try:
        if keyed:
            when = datetime.fromisoformat(value[index].strip())
            return dataset_seconds(as_utc(when))
        t = float(value[index])
    except (IndexError, ValueError):
        return None
    return t if np.isfinite(t) else None


def _write(path: Path, header: str, lines: list[str]) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8", newline="") as out:
        out.write(header)
        out.writelines(lines)
    os.replace(partial, path)


def split_file(csv_path: str, out_dir: Path, share: float = DEFAULT_TRAIN_SHARE) -> FileSplit:
    """Write ``out_dir/train.csv`` (the first ``share`` of the rows by time) and
    ``out_dir/replay.csv`` (the rest), each with the header; return what went where."""
    from producer.replay import open_source

    if not 0.0 < share < 1.0:
        raise FraudstreamError(f"--train-share must be between 0 and 1 (exclusive), not {share}")
    if out_dir.exists() and not out_dir.is_dir():
        raise FraudstreamError(f"--out-dir {out_dir} is not a directory")
    with open_source(csv_path) as handle:
        header = handle.readline()
        lines = handle.readlines()
    names = [h.strip() for h in next(csv.reader([header]), [])]
    keyed = "Time" not in names and "TX_DATETIME" in names
    if "Time" not in names and not keyed:
        raise FraudstreamError(f"{csv_path}: header has no event time to split by (Time of the "
                               "ULB layout, or TX_DATETIME of the keyed layout)")
    if not lines:
        raise FraudstreamError(f"{csv_path}: no data rows to split")
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    index = names.index("TX_DATETIME" if keyed else "Time")
    times = [_time(row, index, keyed) for row in csv.reader(lines)]
    order, in_order = time_order(times)
    ordered = lines if in_order else [lines[i] for i in order]
    ordered_times = [times[i] for i in order]
    cut = int(len(lines) * share)
    if cut < 1 or cut >= len(lines):
        raise FraudstreamError(f"--train-share {share:g} of {len(lines)} rows leaves nothing to "
                               "train on or nothing to replay")
    synthetic = is_synthetic(csv_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for name, start, stop in (("train.csv", 0, cut), ("replay.csv", cut, len(lines))):
        path = out_dir / name
        _write(path, header, ordered[start:stop])
        if synthetic:
            shutil.copyfile(marker(csv_path), marker(path))
        else:
            marker(path).unlink(missing_ok=True)
        known = [t for t in ordered_times[start:stop] if t is not None]
        parts.append(Part(str(path), start + 1, stop, min(known) if known else None,
                          max(known) if known else None))
    return FileSplit(csv_path, len(lines), share, in_order, synthetic, parts[0], parts[1])
