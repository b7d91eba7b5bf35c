"""Loading ``creditcard.csv`` (file or URL) with clear errors, and the tutorial's stratified splits.

Shapes: ``raw`` is ``(n, 29)`` float64 in :data:`schemas.features.RAW_FEATURES` order
(``V1..V28, Amount``); ``y`` is ``(n,)`` int8 with 1 = fraud; ``time`` is ``(n,)`` float64 ``Time``
(seconds since the first transaction) — never a model input (the tutorial drops it), but the
clock of the data: replays, delayed labels and out-of-time splits use it.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.features import RAW_FEATURES
from schemas.keyed import LAYOUT_KEYED, detect_layout

if TYPE_CHECKING:
    from trainer.keyed_data import KeyedDataset

TUTORIAL_CSV_URL = "https://storage.googleapis.com/download.tensorflow.org/data/creditcard.csv"


@dataclass(frozen=True)
class Dataset:
    raw: np.ndarray  # (n, 29) float64
    y: np.ndarray  # (n,) int8
    time: np.ndarray  # (n,) float64 seconds
    sha256: str  # of the source bytes
    source: str


@dataclass(frozen=True)
class Splits:
    """Stratified train/val/test (64 % / 16 % / 20 %, as in the tutorial)."""

    train_raw: np.ndarray
    y_train: np.ndarray
    val_raw: np.ndarray
    y_val: np.ndarray
    test_raw: np.ndarray
    y_test: np.ndarray


def _read_bytes(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=30) as resp:  # noqa: S310 (http/https only)
                return bytes(resp.read())
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FraudstreamError(f"cannot download {source}: {reason}") from exc
    path = Path(source)
    if not path.is_file():
        raise FraudstreamError(f"CSV file not found: {source}")
    return path.read_bytes()


def load_data(source: str) -> Dataset | KeyedDataset:
    """Read a CSV file or URL in either layout of the input contract, detected from its header
    (:func:`schemas.keyed.detect_layout`): a :class:`Dataset` (ULB) or a
    :class:`trainer.keyed_data.KeyedDataset` (keyed). FraudstreamError naming the contract for
    any other header."""
    data = _read_bytes(source)
    if not data.strip():
        raise FraudstreamError(f"{source} is empty")
    header = data[:data.find(b"\n") if b"\n" in data else len(data)]
    names = header.decode("utf-8-sig", "replace").strip().split(",")
    if detect_layout(names, source) == LAYOUT_KEYED:
        from trainer.keyed_data import parse_keyed

        return parse_keyed(data, source)
    return _parse_ulb(data, source)


def load_csv(source: str) -> Dataset:
    """Read and validate a creditcard.csv-shaped file or URL (a keyed CSV is refused).

    Raises :class:`FraudstreamError` naming the problem: missing file, unreachable URL, empty
    file, missing columns, non-numeric or non-finite values, labels other than 0/1, or one class.
    """
    dataset = load_data(source)
    if not isinstance(dataset, Dataset):
        raise FraudstreamError(f"{source} is a keyed CSV (TRANSACTION_ID, TX_DATETIME, ...): "
                               "this needs the ULB layout (Time, V1..V28, Amount, Class)")
    return dataset


def read_frame(data: bytes, source: str) -> Any:
    """The CSV's rows as a DataFrame of text (header names stripped); FraudstreamError when it
    is unreadable or has no row."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FraudstreamError(f"{source} is not a readable CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    detect_layout(frame.columns, source)  # a header line the quick look could not split
    if frame.empty:
        raise FraudstreamError(f"{source} has a header but no rows")
    return frame


def numeric_column(frame: Any, column: str, source: str) -> np.ndarray:
    """``(n,)`` float64 of a text column; FraudstreamError naming the first bad line."""
    import pandas as pd

    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        line = int(np.argmax(bad)) + 2  # header is line 1
        raise FraudstreamError(
            f"{source}: column {column} has {int(bad.sum())} non-numeric or non-finite "
            f"value(s), first on line {line}: {frame[column].iloc[line - 2]!r}")
    return values


def _parse_ulb(data: bytes, source: str) -> Dataset:
    frame = read_frame(data, source)
    numeric = {column: numeric_column(frame, column, source)
               for column in ("Time", *RAW_FEATURES, "Class")}
    if (numeric["Amount"] < 0).any():
        line = int(np.argmax(numeric["Amount"] < 0)) + 2
        raise FraudstreamError(f"{source}: negative Amount on line {line}")
    labels = numeric["Class"]
    if not np.isin(labels, (0.0, 1.0)).all():
        line = int(np.argmax(~np.isin(labels, (0.0, 1.0)))) + 2
        value = labels[line - 2]
        raise FraudstreamError(f"{source}: Class must be 0 or 1, line {line} has {value}")
    if len(np.unique(labels)) < 2:
        raise FraudstreamError(
            f"{source} has only class {int(labels[0])}: training needs frauds and non-frauds"
        )
    raw = np.column_stack([numeric[c] for c in RAW_FEATURES])
    return Dataset(raw=raw, y=labels.astype(np.int8), time=numeric["Time"],
                   sha256=hashlib.sha256(data).hexdigest(), source=source)


def split(dataset: Dataset, *, seed: int) -> Splits:
    """Stratified 80/20 then 80/20 again, as the tutorial (train 64 %, val 16 %, test 20 %)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(dataset.y))
    try:
        rest, test = train_test_split(index, test_size=0.2, stratify=dataset.y, random_state=seed)
        train, val = train_test_split(rest, test_size=0.2, stratify=dataset.y[rest],
                                      random_state=seed)
    except ValueError as exc:
        raise FraudstreamError(
            f"cannot split {dataset.source} into stratified sets: {exc}") from exc
    return Splits(
        train_raw=dataset.raw[train], y_train=dataset.y[train],
        val_raw=dataset.raw[val], y_val=dataset.y[val],
        test_raw=dataset.raw[test], y_test=dataset.y[test],
    )
