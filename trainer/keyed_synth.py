"""``fraudstream synth --kind keyed``: a transaction simulator with history — customers (cards)
and terminals, daily spending, and three fraud scenarios — written from the description of the
generator in the ULB/Worldline *Practical Handbook* (vectorised numpy; not its code).

* Customers are placed uniformly on a 100×100 grid, each with a mean amount ~ U(5, 100), a
  standard deviation of half that, and a mean number of transactions per day ~ U(0, 4). Terminals
  are placed uniformly; a customer uses the terminals within ``radius`` of it (none: it makes no
  transaction).
* Each day a customer makes Poisson(mean) transactions, each at a time of day
  ~ N(12 h, 20,000 s) (whole seconds; draws outside the day are dropped), at a terminal drawn
  uniformly from its set, for an amount ~ N(mean, std) (a negative draw is replaced by
  U(0, 2·mean)), in cents.
* Frauds: (1) every amount above 220; (2) each day 2 terminals drawn at random are compromised
  for the next 28 days: all their transactions are fraud; (3) each day 3 customers drawn at random
  are compromised for the next 14 days: a third of their transactions in that period (drawn at
  random) have their amount multiplied by 5 and are fraud. A later scenario overrides an earlier
  one's ``TX_FRAUD_SCENARIO``.

Output: the keyed CSV layout (:data:`schemas.keyed.KEYED_CSV_COLUMNS` and ``TX_FRAUD_SCENARIO``),
sorted by ``TX_DATETIME`` (UTC, ISO 8601 without zone), ``TRANSACTION_ID`` 0..n-1 in that order.
The same seed writes the same file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.keyed import KEYED_CSV_COLUMNS, SCENARIO_COLUMN

DAY_S = 86_400
COMPROMISED_TERMINALS_PER_DAY, TERMINAL_DAYS = 2, 28
COMPROMISED_CUSTOMERS_PER_DAY, CUSTOMER_DAYS = 3, 14
AMOUNT_FRAUD_ABOVE = 220.0


@dataclass(frozen=True)
class SimulationParams:
    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    start: str = "2018-04-01"
    radius: float = 5.0
    seed: int = 0

    def check(self) -> date:
        """The start date; FraudstreamError naming a bad parameter."""
        for name in ("customers", "terminals", "days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FraudstreamError(f"--{name} must be a whole number >= 1, got {value!r}")
        if self.customers < COMPROMISED_CUSTOMERS_PER_DAY or \
                self.terminals < COMPROMISED_TERMINALS_PER_DAY:
            raise FraudstreamError("--customers must be >= 3 and --terminals >= 2 (the fraud "
                                   "scenarios compromise 3 customers and 2 terminals a day)")
        if not 0 < self.radius <= 150:
            raise FraudstreamError(f"--radius must be in (0, 150], got {self.radius}")
        try:
            return date.fromisoformat(self.start)
        except ValueError as exc:
            raise FraudstreamError(f"--start: not an ISO date: {self.start!r}") from exc


def _terminal_sets(cx: np.ndarray, cy: np.ndarray, tx: np.ndarray, ty: np.ndarray,
                   radius: float) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr ``(c+1,)``, indices) of the terminals within ``radius`` of each customer."""
    indices, counts = [], []
    for lo in range(0, len(cx), 512):  # 512 × terminals distances at a time
        d2 = (cx[lo:lo + 512, None] - tx[None, :]) ** 2 + (cy[lo:lo + 512, None] - ty[None, :]) ** 2
        rows, cols = np.nonzero(d2 < radius * radius)
        indices.append(cols)
        counts.append(np.bincount(rows, minlength=len(d2)))
    return np.r_[0, np.cumsum(np.concatenate(counts))], np.concatenate(indices)


def simulate(params: SimulationParams) -> dict[str, np.ndarray]:
    """The simulated transactions as columns (sorted by time): ``seconds`` (int64 since the start
    day's midnight), ``customer``, ``terminal`` (int64 ids), ``amount`` (float64, cents),
    ``fraud`` (int8), ``scenario`` (int8, 0 = genuine)."""
    params.check()
    rng = np.random.default_rng(params.seed)
    nc, nt, days = params.customers, params.terminals, params.days
    cx, cy = rng.uniform(0, 100, nc), rng.uniform(0, 100, nc)
    mean_amount = rng.uniform(5, 100, nc)
    per_day = rng.uniform(0, 4, nc)
    tx, ty = rng.uniform(0, 100, nt), rng.uniform(0, 100, nt)
    indptr, indices = _terminal_sets(cx, cy, tx, ty, params.radius)
    degree = np.diff(indptr)

    counts = rng.poisson(np.repeat(per_day[:, None], days, axis=1))  # (customers, days)
    counts[degree == 0] = 0
    customer = np.repeat(np.repeat(np.arange(nc), days), counts.ravel())
    day = np.repeat(np.tile(np.arange(days), nc), counts.ravel())
    time_of_day = rng.normal(DAY_S / 2, 20_000, len(customer)).astype(np.int64)  # toward zero
    keep = (time_of_day > 0) & (time_of_day < DAY_S)
    customer, day, time_of_day = customer[keep], day[keep], time_of_day[keep]
    n = len(customer)
    mean = mean_amount[customer]
    amount = rng.normal(mean, mean / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean[negative])
    amount = np.round(amount, 2)
    pick = (rng.random(n) * degree[customer]).astype(np.int64)
    terminal = indices[indptr[customer] + pick]
    seconds = day * DAY_S + time_of_day
    order = np.argsort(seconds, kind="stable")
    seconds, customer, terminal, amount, day = (a[order] for a in
                                                (seconds, customer, terminal, amount, day))

    scenario = np.zeros(n, dtype=np.int8)
    scenario[amount > AMOUNT_FRAUD_ABOVE] = 1
    compromised = np.zeros((nt, days), dtype=bool)
    for d in range(days):
        hit = rng.choice(nt, COMPROMISED_TERMINALS_PER_DAY, replace=False)
        compromised[hit, d:d + TERMINAL_DAYS] = True
    scenario[compromised[terminal, day]] = 2
    by_customer = np.argsort(customer, kind="stable")  # each customer's rows, in time order
    starts = np.searchsorted(customer[by_customer], np.arange(nc + 1))
    for d in range(days):
        hit = rng.choice(nc, COMPROMISED_CUSTOMERS_PER_DAY, replace=False)
        rows = np.concatenate([by_customer[starts[c]:starts[c + 1]] for c in hit])
        rows = rows[(day[rows] >= d) & (day[rows] < d + CUSTOMER_DAYS)]
        chosen = rng.choice(rows, len(rows) // 3, replace=False)
        amount[chosen] = np.round(amount[chosen] * 5, 2)
        scenario[chosen] = 3
    return {"seconds": seconds, "customer": customer, "terminal": terminal, "amount": amount,
            "fraud": (scenario > 0).astype(np.int8), "scenario": scenario}


def write_keyed_csv(path: Path, params: SimulationParams) -> dict[str, Any]:
    """Simulate and write the keyed CSV to ``path`` (plus its synthetic marker); return a
    summary: rows, frauds, and the fraud share of each scenario."""
    from schemas.provenance import marker

    path = Path(path)
    if not path.parent.is_dir():
        raise FraudstreamError(f"output directory does not exist: {path.parent}")
    start = params.check()
    columns = simulate(params)
    n = len(columns["seconds"])
    stamps = np.datetime64(start.isoformat(), "s") + columns["seconds"].astype("timedelta64[s]")
    table = np.empty((n, len(KEYED_CSV_COLUMNS) + 1), dtype=object)
    table[:, 0] = np.arange(n).astype(str)
    table[:, 1] = np.datetime_as_string(stamps, unit="s")
    table[:, 2] = columns["customer"].astype(str)
    table[:, 3] = columns["terminal"].astype(str)
    table[:, 4] = np.char.mod("%.2f", columns["amount"])
    table[:, 5] = columns["fraud"].astype(str)
    table[:, 6] = columns["scenario"].astype(str)
    with path.open("w") as fh:
        fh.write(",".join((*KEYED_CSV_COLUMNS, SCENARIO_COLUMN)) + "\n")
        for lo in range(0, n, 200_000):
            block = table[lo:lo + 200_000]
            fh.write("\n".join(map(",".join, block.tolist())) + ("\n" if len(block) else ""))
    scenario = columns["scenario"]
    summary = {"rows": n, "frauds": int(columns["fraud"].sum()),
               "fraud_share": float(columns["fraud"].mean()) if n else 0.0,
               "by_scenario": {str(s): {"frauds": int((scenario == s).sum()),
                                        "share": float((scenario == s).mean()) if n else 0.0}
                               for s in (1, 2, 3)}}
    marker(path).write_text(json.dumps({"generator": "fraudstream synth --kind keyed",
                                        **asdict(params)}) + "\n")
    return summary
