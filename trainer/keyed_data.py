"""Loading a keyed CSV (the handbook's layout, :data:`schemas.keyed.KEYED_CSV_COLUMNS`) into a
history sorted by event time, with one-line errors naming the problem.

``TX_DATETIME`` is ISO 8601; without a zone it is UTC. ``TX_FRAUD`` is 0/1; the optional
``TX_FRAUD_SCENARIO`` is kept for reports and never becomes a feature. Ids are text and follow the
event's id rules (1..128 printable characters).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.behaviour import History, known_after_delay
from schemas.errors import FraudstreamError
from schemas.events import MAX_ID_LENGTH
from schemas.keyed import KEYED_CSV_COLUMNS, SCENARIO_COLUMN
from trainer.data import numeric_column, read_frame


@dataclass(frozen=True)
class KeyedDataset:
    """Columns in history order (by event time; ties keep file order)."""

    transaction_id: np.ndarray  # (n,) str (object)
    time_us: np.ndarray  # (n,) int64 µs since the Unix epoch, UTC
    customer_id: np.ndarray  # (n,) str (object)
    terminal_id: np.ndarray  # (n,) str (object)
    amount: np.ndarray  # (n,) float64
    y: np.ndarray  # (n,) int8
    scenario: np.ndarray | None  # (n,) int8 or None
    sha256: str
    source: str
    #: When each row became known fraud (µs; :data:`schemas.behaviour.NEVER`: not known), for
    #: data read back from the stream (its labels' observation times); None: CSV truth, each
    #: fraud known ``delay_days`` after it happened.
    known_us: np.ndarray | None = None

    @property
    def time(self) -> np.ndarray:
        """Event times in seconds since the Unix epoch (float64), for reports and splits."""
        return self.time_us / 1e6

    def history(self, delay_days: int, known: np.ndarray | None = None) -> History:
        """The :class:`History` of this data: frauds known at ``known`` (``(n,)`` int64 µs,
        e.g. label observation times), else at :attr:`known_us`, else ``delay_days`` after they
        happened (CSV truth)."""
        import pandas as pd

        known = self.known_us if known is None else known
        fraud_known = known_after_delay(self.time_us, self.y, delay_days) if known is None \
            else np.asarray(known, dtype=np.int64)
        return History(time_us=self.time_us,
                       customer=pd.factorize(self.customer_id)[0].astype(np.int64),
                       terminal=pd.factorize(self.terminal_id)[0].astype(np.int64),
                       amount=self.amount, fraud_known=fraud_known)

    def take(self, index: np.ndarray) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id[index], "time_us": self.time_us[index],
                "customer_id": self.customer_id[index], "amount": self.amount[index],
                "y": self.y[index]}


def _ids(frame: Any, column: str, source: str) -> np.ndarray:
    values = frame[column].str.strip()
    bad = (values.str.len() == 0) | (values.str.len() > MAX_ID_LENGTH) \
        | values.str.contains(r"[\x00-\x1f\x7f]", regex=True)
    if bad.any():
        line = int(np.argmax(bad.to_numpy())) + 2
        raise FraudstreamError(f"{source}: {column} on line {line} is not an id (1..{MAX_ID_LENGTH}"
                               f" printable characters): {frame[column].iloc[line - 2]!r}")
    return values.to_numpy(dtype=object)


def parse_keyed(data: bytes, source: str) -> KeyedDataset:
    """Validate and sort a keyed CSV's bytes (header already known to be keyed)."""
    import pandas as pd

    frame = read_frame(data, source)
    stamps = pd.to_datetime(frame["TX_DATETIME"].str.strip(), errors="coerce", utc=True,
                            format="ISO8601")
    if stamps.isna().any():
        line = int(np.argmax(stamps.isna().to_numpy())) + 2
        raise FraudstreamError(f"{source}: TX_DATETIME on line {line} is not an ISO 8601 time: "
                               f"{frame['TX_DATETIME'].iloc[line - 2]!r}")
    time_us = stamps.dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    amount = numeric_column(frame, "TX_AMOUNT", source)
    if (amount < 0).any():
        raise FraudstreamError(f"{source}: negative TX_AMOUNT on line "
                               f"{int(np.argmax(amount < 0)) + 2}")
    labels = numeric_column(frame, "TX_FRAUD", source)
    if not np.isin(labels, (0.0, 1.0)).all():
        line = int(np.argmax(~np.isin(labels, (0.0, 1.0)))) + 2
        raise FraudstreamError(f"{source}: TX_FRAUD must be 0 or 1, line {line} has "
                               f"{labels[line - 2]}")
    scenario = numeric_column(frame, SCENARIO_COLUMN, source).astype(np.int8) \
        if SCENARIO_COLUMN in frame.columns else None
    ids = {c: _ids(frame, c, source) for c in KEYED_CSV_COLUMNS if c.endswith("_ID")}
    repeated = pd.Series(ids["TRANSACTION_ID"]).duplicated().to_numpy()
    if repeated.any():
        line = int(np.argmax(repeated)) + 2
        raise FraudstreamError(f"{source}: TRANSACTION_ID {ids['TRANSACTION_ID'][line - 2]!r} "
                               f"on line {line} repeats an earlier one")
    order = np.argsort(time_us, kind="stable")
    return KeyedDataset(
        transaction_id=ids["TRANSACTION_ID"][order], time_us=time_us[order],
        customer_id=ids["CUSTOMER_ID"][order], terminal_id=ids["TERMINAL_ID"][order],
        amount=amount[order], y=labels[order].astype(np.int8),
        scenario=None if scenario is None else scenario[order],
        sha256=hashlib.sha256(data).hexdigest(), source=source)

