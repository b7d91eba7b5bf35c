"""Synthetic stand-in for ``creditcard.csv``, for tests, demos and benchmarks.

Rows are drawn from the class-conditional model in the packaged ``synth_params.json`` (fitted by
:mod:`trainer.fit_synth` on real rows): per class, a Gaussian mixture over
``V1..V28, log(Amount + 0.001)`` and an hourly histogram of ``Time``. The classes overlap as in
the real data, so a model scores high but not perfectly: besides a fraud mixture component close
to the normals, a small share of frauds (``camouflaged_fraud_share``, 3%) is drawn from the normal
mixture, as some real frauds are indistinguishable from normal transactions.

Columns are exactly :data:`schemas.features.CSV_COLUMNS`; units as in the real file: ``Time`` in
seconds from the first transaction (integer-valued, ``0..172792``), ``Amount`` in currency units
(>= 0, 2 decimals), ``Class`` 0 (normal) or 1 (fraud).
"""

from __future__ import annotations

import json
import numbers
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas.errors import FraudstreamError
from schemas.features import CSV_COLUMNS, V_COLUMNS
from schemas.provenance import marker

if TYPE_CHECKING:
    import pandas as pd

PARAMS_PATH = Path(__file__).parent / "synth_params.json"
PARAMS_VERSION = 1
#: Fraud share of the real creditcard.csv (492 / 284,807).
DEFAULT_FRAUD_RATE = 0.00173
_N_FEATURES = len(V_COLUMNS) + 1


@lru_cache(maxsize=1)
def load_params() -> dict[str, Any]:
    """Read and check the packaged parameters (cached; treat the result as read-only)."""
    try:
        params = json.loads(PARAMS_PATH.read_text())
    except (OSError, ValueError) as exc:
        raise FraudstreamError(
            f"cannot read synthetic-data parameters {PARAMS_PATH}: {exc}") from exc
    if params.get("version") != PARAMS_VERSION:
        raise FraudstreamError(f"unsupported synth_params.json version {params.get('version')!r}")
    return params


def fraud_count(rows: int, fraud_rate: float) -> int:
    """Frauds in ``rows`` rows: ``round(rows * fraud_rate)``, but at least 1 from 0.5 upwards."""
    expected = rows * fraud_rate
    count = int(round(expected))
    return max(count, 1) if expected >= 0.5 else count


def sample_mixture(mixture: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` rows ``(n, 29)`` (``V1..V28, log(Amount + 0.001)``) from one class's mixture.

    The log-amount column is the mixture's own; :func:`calibrate_log_amount` maps it to the real
    marginal.
    """
    weights = np.asarray(mixture["weights"], dtype=float)
    means = np.asarray(mixture["means"], dtype=float)
    tril = np.asarray(mixture["chol_tril"], dtype=float)
    chol = np.zeros((len(weights), _N_FEATURES, _N_FEATURES))
    rows, cols = np.tril_indices(_N_FEATURES)
    chol[:, rows, cols] = tril
    component = rng.choice(len(weights), size=n, p=weights / weights.sum())
    out = rng.standard_normal((n, _N_FEATURES))
    for k in range(len(weights)):
        mask = component == k
        out[mask] = out[mask] @ chol[k].T + means[k]
    return out


def calibrate_log_amount(mixture: dict[str, Any], log_amount: np.ndarray) -> np.ndarray:
    """Map mixture log-amounts ``(n,)`` onto the real marginal by piecewise-linear quantiles."""
    table = mixture["log_amount_map"]
    return np.interp(log_amount, table["model_quantiles"], table["real_quantiles"])


def _sample_time(counts: list[float], n: int, params: dict[str, Any],
                 rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` integer-valued times (seconds) from an hourly histogram."""
    width, max_time = params["bin_seconds"], params["max_time"]
    probs = np.asarray(counts, dtype=float)
    hour = rng.choice(len(probs), size=n, p=probs / probs.sum())
    seconds = np.floor((hour + rng.random(n)) * width)
    return np.minimum(seconds, max_time)


def generate(rows: int, *, fraud_rate: float = DEFAULT_FRAUD_RATE, seed: int = 0) -> pd.DataFrame:
    """Return ``rows`` synthetic transactions, sorted by ``Time``, as a DataFrame.

    Columns are :data:`CSV_COLUMNS`: ``Time`` (float64 whole seconds), ``V1..V28`` (float64),
    ``Amount`` (float64, >= 0, rounded to cents), ``Class`` (int64; exactly
    :func:`fraud_count` ``(rows, fraud_rate)`` ones). The same ``seed`` gives the same frame.
    """
    import pandas as pd

    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise FraudstreamError(f"rows must be an integer >= 1, got {rows!r}")
    if isinstance(fraud_rate, bool) or not isinstance(fraud_rate, numbers.Real) \
            or not 0 <= fraud_rate < 1:
        raise FraudstreamError(f"fraud_rate must be in [0, 1), got {fraud_rate!r}")
    params = load_params()
    rng = np.random.default_rng(seed)
    frauds = fraud_count(int(rows), float(fraud_rate))
    sizes = {0: int(rows) - frauds, 1: frauds}
    time_counts = {0: params["time"]["normal_counts"], 1: params["time"]["fraud_counts"]}

    camouflaged = int(rng.binomial(frauds, params["camouflaged_fraud_share"]))
    # Feature draws: normals, then camouflaged frauds from the normal mixture, then the rest.
    parts = []
    for mixture_class, n in ((0, sizes[0] + camouflaged), (1, frauds - camouflaged)):
        mixture = params["classes"][str(mixture_class)]
        part = sample_mixture(mixture, n, rng)
        part[:, -1] = calibrate_log_amount(mixture, part[:, -1])
        parts.append(part)
    features = np.concatenate(parts)
    times = np.concatenate(
        [_sample_time(time_counts[c], sizes[c], params["time"], rng) for c in (0, 1)])
    labels = np.repeat(np.array([0, 1], dtype=np.int64), [sizes[0], sizes[1]])
    # Shuffle first so that rows sharing a second are not grouped by class, then sort by Time.
    order = rng.permutation(int(rows))
    order = order[np.argsort(times[order], kind="stable")]

    amount = np.exp(features[order, -1]) - params["amount_epsilon"]
    frame = pd.DataFrame(features[order, :-1], columns=list(V_COLUMNS))
    frame.insert(0, "Time", times[order])
    frame["Amount"] = np.round(np.clip(amount, 0.0, None), 2)
    frame["Class"] = labels[order]
    return frame[list(CSV_COLUMNS)]


def write_csv(path: Path, rows: int, *, fraud_rate: float = DEFAULT_FRAUD_RATE,
              seed: int = 0) -> Path:
    """Write :func:`generate` ``(rows, ...)`` to ``path`` as a creditcard.csv-style file.

    Formats: ``Time`` and ``Class`` as integers, ``V1..V28`` with ``%.6g``, ``Amount`` ``%.2f``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FraudstreamError(f"output directory does not exist: {path.parent}")
    frame = generate(rows, fraud_rate=fraud_rate, seed=seed)
    marker(path).write_text(json.dumps({"generator": "fraudstream synth", "rows": rows,
                                        "fraud_rate": fraud_rate, "seed": seed}) + "\n")
    fmt = ["%d", *(["%.6g"] * len(V_COLUMNS)), "%.2f", "%d"]
    np.savetxt(path, frame.to_numpy(dtype=float), fmt=fmt, delimiter=",",
               header=",".join(CSV_COLUMNS), comments="")
    return path
