"""`fraudstream synth --kind keyed`: the handbook's generator as described (pure, small)."""

from __future__ import annotations

import numpy as np
import pytest

from fraudstream_cli import main
from schemas.errors import FraudstreamError
from trainer.data import load_data
from trainer.keyed_synth import SimulationParams, simulate, write_keyed_csv

SMALL = SimulationParams(customers=200, terminals=400, days=40, seed=7)


def test_scenarios_follow_the_description():
    sim = simulate(SMALL)
    seconds, card, term, amount, fraud, scenario = (sim[k] for k in (
        "seconds", "customer", "terminal", "amount", "fraud", "scenario"))
    assert np.all(np.diff(seconds) >= 0) and len(seconds) > 5_000
    day = seconds // 86_400
    assert seconds.min() >= 0 and day.max() < SMALL.days
    assert np.all((seconds % 86_400) > 0)  # draws outside the day dropped, 0 s excluded
    # scenario 1: every amount above 220 that no later scenario took is fraud (1)
    assert np.all(scenario[(amount > 220) & (scenario < 2)] == 1)
    assert np.all(fraud == (scenario > 0))
    # scenario 2: a compromised terminal's transactions are all fraud from then on for 28 days:
    # on any terminal, once a scenario-2 fraud appears, the next transactions within that day
    # are fraud too
    s2 = np.flatnonzero(scenario == 2)
    for i in s2[:50]:
        same = np.flatnonzero((term == term[i]) & (day == day[i]))
        assert np.all(fraud[same])
    # scenario 3: amounts multiplied by 5, about a third of compromised cards' transactions
    assert (scenario == 3).sum() > 0 and (scenario == 2).sum() > 0
    assert np.all(np.round(amount[scenario == 3] * 100) % 5 == 0)  # x5 of whole cents
    # the same seed, the same data; another seed, other data
    again = simulate(SMALL)
    assert all(np.array_equal(sim[k], again[k]) for k in sim)
    other = simulate(SimulationParams(customers=200, terminals=400, days=40, seed=8))
    assert len(other["seconds"]) != len(seconds) or not np.array_equal(other["amount"], amount)


def test_keyed_csv_round_trips_through_the_loader_and_cli(tmp_path, capsys):
    path = tmp_path / "keyed.csv"
    summary = write_keyed_csv(path, SimulationParams(customers=50, terminals=100, days=8, seed=1))
    data = load_data(str(path))
    assert len(data.y) == summary["rows"] and int(data.y.sum()) == summary["frauds"]
    assert sum(v["frauds"] for v in summary["by_scenario"].values()) == summary["frauds"]
    assert str(np.datetime64(int(data.time_us[0]), "us"))[:10] >= "2018-04-01"
    assert main(["synth", "--kind", "keyed", "--customers", "30", "--terminals", "60", "--days",
                 "5", "--start", "2020-01-01", "--seed", "2", "--out", str(tmp_path / "c.csv")]) \
        == 0
    assert "transactions" in capsys.readouterr().out
    assert (tmp_path / "c.csv").read_text().splitlines()[1].split(",")[1].startswith("2020-01-0")
    assert main(["synth", "--kind", "keyed", "--customers", "0", "--out",
                 str(tmp_path / "d.csv")]) == 2
    assert "--customers" in capsys.readouterr().err
    with pytest.raises(FraudstreamError, match="--start"):
        simulate(SimulationParams(start="April"))
