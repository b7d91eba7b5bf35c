"""The keyed loop's pieces against a real broker and SQLite: retraining from the stream on keyed
events (read back from the topic, labels and their observation times from the store, behaviour
features by the one implementation) and the gate against a keyed production model."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from fraudstream_cli import main
from schemas.behaviour import model_inputs
from store import registry
from store.db import connect
from stream.readback import read_back
from tests.test_keyed_stream import replay_with_labels, train_keyed
from trainer.data import load_data
from trainer.keyed_pipeline import KeyedOptions
from trainer.keyed_stream import keyed_stream_data
from trainer.keyed_synth import SimulationParams, write_keyed_csv
from trainer.retrain import RetrainOptions

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def keyed_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("keyed") / "sim.csv"
    write_keyed_csv(path, SimulationParams(customers=60, terminals=40, days=30, radius=30,
                                           seed=5))
    return path


def cli_json(*argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_retrain_from_the_stream_on_keyed_events(kafka_bootstrap, new_topic, db_url, keyed_csv,
                                                 home):
    production = train_keyed(keyed_csv, db_url)
    engine = connect(db_url)
    topic, n = replay_with_labels(kafka_bootstrap, new_topic, keyed_csv, engine)
    summary = cli_json("retrain", "--topic", topic, "--bootstrap-servers", kafka_bootstrap,
                       "--family", "xgboost", "--mature-after", "7d", "--db", db_url, "--json")
    t = summary["training"]
    assert (summary["source"], summary["input"], t["source"]) == (
        "stream", "transaction.v2", "stream")
    assert t["synthetic"] is True and t["records_read"] == n and t["dead_lettered"] == 0
    # events younger than the label window (7 days before the newest) are left out
    csv = load_data(str(keyed_csv))
    cutoff = csv.time_us.max() - 7 * 86_400 * 10**6
    assert t["rows"] == int((csv.time_us <= cutoff).sum()) == n - t["labels"]["left_out"]
    assert t["frauds"] == int(csv.y[csv.time_us <= cutoff].sum()) > 0
    [candidate] = summary["candidates"]
    assert candidate["gate"]["production"]  # judged against the keyed production's scores
    [decision] = registry.promotion_history(engine, candidate["version"])
    assert decision.comparison["production_version"] == production
    record = registry.get(engine, candidate["version"])
    assert record.training["input"] == "transaction.v2"
    assert record.training["source"] == "stream"

    # The round's features: those of the stream's events with each fraud known when its label
    # was observed (7 days after it, the replay's delay), so equal to the CSV's offline ones.
    opts = RetrainOptions(topic=topic, mature_after_s=7 * 86_400.0)
    dataset, _ = keyed_stream_data(engine, opts, read_back(kafka_bootstrap, topic))
    spec = KeyedOptions().spec()
    stream_inputs = model_inputs(spec, dataset.history(spec.delay_days))
    offline = model_inputs(spec, csv.history(spec.delay_days))
    row = {f"sim:{tid}": i for i, tid in enumerate(csv.transaction_id)}
    index = np.array([row[tid] for tid in dataset.transaction_id])
    assert np.array_equal(dataset.y, csv.y[index])
    np.testing.assert_allclose(stream_inputs, offline[index], rtol=0, atol=1e-9)
    assert stream_inputs[:, spec.input_names().index("terminal_risk_7d")].max() > 0
