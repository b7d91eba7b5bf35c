"""The handbook's evaluation protocol for keyed data: a training period, then a delay period
left out (its labels are not known yet when the model is trained), then a test period — one week
each by default — and the test set as an investigator would see it.

Periods are whole UTC days. By default the test period ends with the data's last day. The test
set leaves out, each test day, the transactions of cards already known to be compromised: a
card with a fraud in the training period, or in the delay period at least ``delay_days`` before
that test day (frauds become known ``delay_days`` after they happen), as in the handbook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError
from trainer.keyed_data import KeyedDataset

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Protocol:
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7
    train_start: date | None = None  # None: the test period ends with the data's last day

    def check(self) -> None:
        for name in ("train_days", "delay_days", "test_days"):
            value = getattr(self, name)
            if type(value) is not int or value < (0 if name == "delay_days" else 1):
                raise FraudstreamError(f"--{name.replace('_', '-')} must be a whole number of "
                                       f"days >= {0 if name == 'delay_days' else 1}, got {value}")


@dataclass(frozen=True)
class Periods:
    """Day numbers (days since the Unix epoch, UTC) of the three periods, half-open."""

    train: tuple[int, int]
    delay: tuple[int, int]
    test: tuple[int, int]

    def describe(self) -> dict[str, dict[str, str]]:
        def span(days: tuple[int, int]) -> dict[str, str]:
            first = date(1970, 1, 1) + timedelta(days=days[0])
            last = date(1970, 1, 1) + timedelta(days=days[1] - 1)
            return {"first_day": first.isoformat(), "last_day": last.isoformat(),
                    "days": str(days[1] - days[0])}

        return {"train": span(self.train), "delay (left out)": span(self.delay),
                "test": span(self.test)}

    def sentence(self) -> str:
        d = self.describe()
        return "; ".join(f"{name}: {p['first_day']} .. {p['last_day']} ({p['days']} days)"
                         for name, p in d.items())


@dataclass(frozen=True)
class ProtocolSplit:
    periods: Periods
    train: np.ndarray  # row indices (history order) of the training period
    test: np.ndarray  # row indices of the test set (known-compromised cards left out)
    test_day: np.ndarray  # (len(test),) day number of each test row
    left_out_known: int  # test-period rows left out (their card was known compromised)

    def info(self) -> dict[str, Any]:
        return {"protocol": self.periods.describe(), "train_rows": int(len(self.train)),
                "test_rows": int(len(self.test)), "test_rows_of_known_cards": self.left_out_known}


def periods_of(dataset: KeyedDataset, protocol: Protocol) -> Periods:
    protocol.check()
    day = dataset.time_us // DAY_US
    span = protocol.train_days + protocol.delay_days + protocol.test_days
    if protocol.train_start is None:
        start = int(day[-1]) - span + 1
    else:
        start = (protocol.train_start - date(1970, 1, 1)).days
    train = (start, start + protocol.train_days)
    delay = (train[1], train[1] + protocol.delay_days)
    test = (delay[1], delay[1] + protocol.test_days)
    if start < int(day[0]) or test[1] > int(day[-1]) + 1:
        first = datetime.fromtimestamp(int(day[0]) * 86_400, UTC).date()
        last = datetime.fromtimestamp(int(day[-1]) * 86_400, UTC).date()
        raise FraudstreamError(
            f"the protocol needs {span} days from {date(1970, 1, 1) + timedelta(days=start)}, "
            f"but {dataset.source} covers {first} .. {last}: change --train-start or the "
            "--train-days/--delay-days/--test-days")
    return Periods(train, delay, test)


def split(dataset: KeyedDataset, protocol: Protocol) -> ProtocolSplit:
    """Training rows, and the test set without the transactions of known compromised cards."""
    import pandas as pd

    periods = periods_of(dataset, protocol)
    day = dataset.time_us // DAY_US
    train = np.flatnonzero((day >= periods.train[0]) & (day < periods.train[1]))
    y = dataset.y
    if len(np.unique(y[train])) < 2:
        raise FraudstreamError(f"the training period ({periods.sentence().split(';')[0]}) needs "
                               "frauds and non-frauds")
    fraud_rows = np.flatnonzero((y == 1) & (day >= periods.train[0]))
    # A fraud on day f is known from the start of day f + 1 + delay (the handbook's rule).
    known_from = day[fraud_rows] + 1 + protocol.delay_days
    first_known = pd.Series(known_from).groupby(dataset.customer_id[fraud_rows]).min()
    test_mask = (day >= periods.test[0]) & (day < periods.test[1])
    candidates = np.flatnonzero(test_mask)
    known_day = first_known.reindex(dataset.customer_id[candidates]).to_numpy(np.float64)
    keep = ~(known_day <= day[candidates])  # nan (never known) keeps the row
    test = candidates[keep]
    if len(test) == 0:
        raise FraudstreamError("the test period has no transaction")
    return ProtocolSplit(periods, train, test, day[test], int((~keep).sum()))
