"""Behaviour features (schemas.behaviour): hand-computed cases at the window edges, a label that
arrives late, a brute-force reference on random histories, and the spec's hash (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from schemas.behaviour import (
    DAY_US,
    NEVER,
    BehaviourContract,
    BehaviourSpec,
    History,
    compute,
    known_after_delay,
)
from schemas.errors import FraudstreamError


def us(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000


#       time (UTC)              card term amount  fraud
ROWS = [("2018-04-02T00:00:00", 0, 0, 10.0, 1),   # r0 Monday midnight, fraud
        ("2018-04-02T05:59:59", 0, 0, 20.0, 0),   # r1
        ("2018-04-03T00:00:00", 0, 0, 30.0, 0),   # r2 exactly 1 day after r0
        ("2018-04-03T00:00:00", 0, 0, 40.0, 0),   # r3 same instant as r2, after it
        ("2018-04-04T00:00:00", 1, 0, 100.0, 0),  # r4 exactly D = 2 days after r0
        ("2018-04-04T05:59:59", 1, 0, 50.0, 0),   # r5
        ("2018-04-04T06:00:00", 1, 0, 70.0, 0),   # r6
        ("2018-04-07T12:00:00", 2, 1, 5.0, 0)]    # r7 Saturday, another terminal
SPEC = BehaviourSpec(customer_windows_days=(1,), terminal_windows_days=(1,), delay_days=2)


def history(fraud_known: np.ndarray | None = None) -> History:
    time_us = np.array([us(r[0]) for r in ROWS], dtype=np.int64)
    fraud = np.array([r[4] for r in ROWS])
    return History(time_us=time_us, customer=np.array([r[1] for r in ROWS]),
                   terminal=np.array([r[2] for r in ROWS]),
                   amount=np.array([r[3] for r in ROWS]),
                   fraud_known=known_after_delay(time_us, fraud, SPEC.delay_days)
                   if fraud_known is None else fraud_known)


def test_hand_computed_features_at_the_window_edges():
    assert SPEC.feature_names() == ("weekend", "night", "customer_count_1d",
                                    "customer_mean_amount_1d", "terminal_count_1d",
                                    "terminal_risk_1d")
    f = compute(SPEC, history())
    expected = np.array([
        # weekend night  c_count c_mean  t_count t_risk
        [0, 1, 1, 10.0, 0, 0.0],          # r0: nothing before
        [0, 1, 2, 15.0, 0, 0.0],          # r1: 05:59:59 is night
        [0, 1, 2, 25.0, 0, 0.0],          # r2: r0 is exactly 1 day before: out (t - w, t]
        [0, 1, 3, 30.0, 0, 0.0],          # r3: its tie r2 came before it: in
        [0, 1, 1, 100.0, 1, 1.0],         # r4: r0 exactly D before: in (t-D-w, t-D]; known at t
        [0, 1, 2, 75.0, 2, 0.5],          # r5: r0 and r1 in the terminal window
        [0, 0, 3, 220 / 3, 2, 0.5],       # r6: 06:00 is not night
        [1, 0, 1, 5.0, 0, 0.0],           # r7: Saturday; terminal 1 has no history
    ])
    np.testing.assert_allclose(f, expected, rtol=0, atol=1e-12)


def test_a_label_that_arrives_late_counts_only_from_when_it_was_observed():
    known = np.full(len(ROWS), NEVER, dtype=np.int64)
    known[1] = us("2018-04-04T06:00:00")  # r1 found fraud late: after r5, exactly at r6
    f = compute(SPEC, history(known))
    # r0's label never came: no fraud known in r4's window
    assert f[4, 5] == 0.0
    assert f[5, 5] == 0.0  # r5 at 05:59:59: r1's label not yet observed
    assert f[6, 5] == 0.5  # r6 at 06:00:00: observed at that instant, counted
    early = known.copy()
    early[0] = us("2018-04-02T00:00:01")  # a label observed before D: known from then on
    assert compute(SPEC, history(early))[4, 5] == 1.0


def reference(spec: BehaviourSpec, h: History) -> np.ndarray:
    """The definition, one transaction at a time."""
    rows = []
    for i in range(len(h.time_us)):
        t = h.time_us[i]
        day = t // DAY_US
        row = [float((day + 3) % 7 >= 5), float(t - day * DAY_US < spec.night_end_hour * 3_600e6)]
        for w in spec.customer_windows_days:
            mine = [j for j in range(i + 1) if h.customer[j] == h.customer[i]
                    and h.time_us[j] > t - w * DAY_US]
            row += [len(mine), float(np.mean(h.amount[mine]))]
        for w in spec.terminal_windows_days:
            end = t - spec.delay_days * DAY_US
            inside = [j for j in range(len(h.time_us)) if h.terminal[j] == h.terminal[i]
                      and end - w * DAY_US < h.time_us[j] <= end]
            known = sum(1 for j in inside if h.fraud_known[j] <= t)
            row += [len(inside), known / len(inside) if inside else 0.0]
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_the_definition_on_random_histories(seed):
    rng = np.random.default_rng(seed)
    n = 400
    time_us = np.sort(rng.integers(0, 60 * DAY_US // 1_000_000, n)) * 1_000_000 + us(
        "2018-04-01T00:00:00")
    time_us[10:14] = time_us[10]  # ties
    fraud = rng.random(n) < 0.2
    observed = time_us + rng.integers(0, 20 * DAY_US, n)  # some labels later than D, some early
    h = History(time_us=time_us, customer=rng.integers(0, 15, n), terminal=rng.integers(0, 8, n),
                amount=rng.uniform(1, 200, n), fraud_known=np.where(fraud, observed, NEVER))
    spec = BehaviourSpec()
    np.testing.assert_allclose(compute(spec, h), reference(spec, h), rtol=1e-12, atol=1e-9)


def test_spec_hash_identity_and_checked_on_load(tmp_path):
    spec = BehaviourSpec()
    assert spec.input_names()[:3] == ("amount", "weekend", "night") and len(
        spec.input_names()) == 15  # the handbook's 15 baseline inputs
    assert BehaviourSpec.from_dict(spec.to_dict()) == spec
    assert BehaviourSpec(delay_days=3).sha256() != spec.sha256()
    contract = BehaviourContract.fit(spec, np.random.default_rng(0).random((50, 15)))
    path = tmp_path / "behaviour_spec.json"
    contract.save(path)
    assert BehaviourContract.load(path, spec.sha256()) == contract
    with pytest.raises(FraudstreamError, match="hash mismatch"):
        BehaviourContract.load(path, BehaviourSpec(delay_days=3).sha256())
    tampered = path.read_text().replace('"delay_days": 7', '"delay_days": 6')
    path.write_text(tampered)
    with pytest.raises(FraudstreamError, match="hash mismatch"):
        BehaviourContract.load(path)
    with pytest.raises(FraudstreamError, match="delay_days"):
        BehaviourSpec(delay_days=0)
