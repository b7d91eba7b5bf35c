"""Drift: PSI and the event-time window (pure), the scorer's gauges, and on the real broker a
replay with ``--shift v14=+3`` that `fraudstream drift --json` sees (and one without a shift)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from metrics import ScorerMetrics
from metrics.drift import DriftReference, DriftWindow, psi, quantile_edges, shares
from producer.replay import parse_shift, replay
from producer.topics import ensure_topics
from schemas.errors import FraudstreamError
from schemas.features import MODEL_FEATURES
from tests.scoring_helpers import setup_model
from trainer.synth import write_csv

F = len(MODEL_FEATURES)


def reference(n: int = 20_000, seed: int = 0) -> tuple[DriftReference, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, s = rng.normal(size=(n, F)).astype(np.float32), rng.beta(1, 20, size=n)
    return DriftReference.fit(x, s), x, s


def test_psi_formula_and_empty_bins() -> None:
    e, a = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert psi(e, a) == pytest.approx(-0.25 * np.log(0.5) + 0.25 * np.log(1.5))
    assert psi(e, e) == 0.0
    assert np.isfinite(psi(np.array([0.0, 1.0]), np.array([1.0, 0.0])))


def test_edges_are_deduplicated_and_outer_bins_open() -> None:
    edges = quantile_edges(np.array([0.0] * 90 + list(range(1, 11))))
    assert list(edges) == sorted(set(edges)) and len(edges) < 9
    got = shares(np.array([0.0, 1.0]), np.array([-100.0, 0.5, 100.0]))
    assert list(got) == pytest.approx([1 / 3] * 3)


def test_reference_round_trips_through_json(tmp_path) -> None:
    from metrics.drift import load_reference

    ref, _, _ = reference(2000)
    ref.save(tmp_path)
    back = load_reference(tmp_path)
    assert back is not None and back.rows == 2000
    assert all(np.array_equal(a, b) for a, b in zip(ref.edges, back.edges, strict=True))
    assert load_reference(tmp_path / "nothing-here") is None


def test_window_same_distribution_is_stable_and_shift_drifts() -> None:
    ref, _, _ = reference()
    rng = np.random.default_rng(1)
    x, s = rng.normal(size=(20_000, F)).astype(np.float32), rng.beta(1, 20, size=20_000)
    window = DriftWindow(ref, window_s=3600)
    window.add(x, s, np.linspace(0, 3000, 20_000))
    report = window.psi()
    assert report["events"] == 20_000
    assert max(report["feature_psi"].values()) < 0.01 and report["score_psi"] < 0.01
    x[:, 13] += 3
    shifted = DriftWindow(ref)
    shifted.add(x, s, np.zeros(20_000))
    got = shifted.psi()["feature_psi"]
    assert got["V14"] > 0.2 and max(v for k, v in got.items() if k != "V14") < 0.01


def test_old_buckets_fall_off_the_window() -> None:
    ref, x, s = reference(6000)
    window = DriftWindow(ref, window_s=3600, buckets=60)
    window.add(x[:3000] + 3, s[:3000], np.full(3000, 100.0))  # drifted, early
    assert window.psi()["feature_psi"]["V1"] > 0.2
    window.add(x[3000:], s[3000:], np.full(3000, 100.0 + 3600 + 60))  # an hour later
    report = window.psi()
    assert report["events"] == 3000 and report["feature_psi"]["V1"] < 0.05
    window.add(x[:10], s[:10], np.zeros(10))  # older than the window: ignored
    assert window.events == 3000


def test_scorer_metrics_export_psi_gauges() -> None:
    ref, x, s = reference(3000)
    metrics = ScorerMetrics()
    assert metrics.registry.get_sample_value("fraudstream_score_psi") is None  # no window yet
    sample = SimpleNamespace(reference=ref, inputs=x, times=np.zeros(len(x)))
    metrics.observe_effects(SimpleNamespace(stats={"scored": len(x)}, scores=s, drift=sample,
                                            dead=[]))
    v14 = metrics.registry.get_sample_value("fraudstream_feature_psi", {"feature": "V14"})
    assert v14 is not None and v14 < 0.01
    assert metrics.registry.get_sample_value("fraudstream_drift_window_events") == 3000
    assert metrics.registry.get_sample_value("fraudstream_score_psi") < 0.01


def test_parse_shift() -> None:
    assert parse_shift("v14=+3, amount=-1.5") == {14: 3.0, 29: -1.5}
    assert parse_shift(None) == {}
    for bad in ("v29=1", "time_s=1", "v14", "v14=x", "v14=inf"):
        with pytest.raises(FraudstreamError, match="--shift"):
            parse_shift(bad)


ROWS = 20_000


def drift_json(bootstrap: str, topic: str, db_url: str, home) -> dict:
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home), "FRAUDSTREAM_DB_URL": db_url}
    done = subprocess.run([sys.executable, "-m", "fraudstream_cli", "drift", "--json",
                           "--bootstrap-servers", bootstrap, "--topic", topic,
                           "--last", str(ROWS)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_replay_shift_drives_v14_psi_and_no_shift_stays_stable(kafka_bootstrap, new_topic,
                                                               tmp_path, home) -> None:
    db_url = f"sqlite:///{tmp_path / 'fraudstream.db'}"
    csv = str(write_csv(tmp_path / "drift.csv", ROWS, fraud_rate=0.01, seed=5))
    setup_model(csv, db_url, home)
    reports = {}
    for shift in ("v14=+3", None):
        topic = new_topic(kafka_bootstrap)
        ensure_topics(kafka_bootstrap, {topic: 3})
        summary = replay(csv, bootstrap=kafka_bootstrap, topic=topic, shift=shift)
        assert summary.sent == ROWS and summary.failed == 0
        reports[shift] = drift_json(kafka_bootstrap, topic, db_url, home)
    shifted, plain = reports["v14=+3"], reports[None]
    assert shifted["events"] == ROWS and plain["events"] == ROWS
    assert shifted["feature_psi"]["V14"] > 0.2 and shifted["top"][0]["feature"] == "V14"
    assert max(v for k, v in shifted["feature_psi"].items() if k != "V14") < 0.1
    assert max(plain["feature_psi"].values()) < 0.1 and plain["score_psi"] < 0.1
    assert plain["drifting"] == [] and shifted["drifting"][0] == "V14"


def test_the_text_report_prints_event_times_as_dates() -> None:
    """Like every other command (not "161954..172792 s")."""
    from scorer.drift_cli import human

    report = {"events": 2, "model_version": 3, "reference_rows": 10, "score_psi": 0.01,
              "window": {"first_time_s": 161954.0, "last_time_s": 172792.0},
              "top": [], "drifting": []}
    first = human(report, top=5).splitlines()[0]
    assert "event time 2013-09-02 20:59:14 .. 2013-09-02 23:59:52" in first, first
    assert "161954" not in first
