"""Delayed truth end to end on a real broker: a delayed-label replay, scorer and label sink each
SIGKILLed twice at random points and restarted; the matured counts must equal an offline join of
an offline scoring with the dataset's Class, exactly."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from producer.replay import replay
from producer.topics import ensure_topics
from scorer.model import load_model
from store.counts import matured_counts
from store.db import connect
from tests.scoring_helpers import committed_offsets, finish, kill, scorer_process, setup_model
from trainer.data import load_csv
from trainer.synth import write_csv

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DELAY_H = 6


def labels_process(bootstrap: str, topic: str, group: str, db_url: str, home: Path,
                   *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "FRAUDSTREAM_DB_URL": db_url}
    cmd = [sys.executable, "-m", "fraudstream_cli", "labels", "consume", "--topic", topic,
           "--group-id", group, "--dlq-topic", f"{topic}.dlq", "--json", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def offline_matured(engine, csv: str, home: Path) -> dict[str, int]:
    """Offline scoring of every row, joined with Class: frauds count by flag (their labels all
    arrive, the last ones after the replayed window); genuine rows count once DELAY_H older
    than the latest event, the younger ones are pending."""
    model = load_model(engine, "production", home=home)
    data = load_csv(csv)
    flagged = model.score_raw(data.raw) >= model.threshold
    fraud = data.y == 1
    mature = data.time <= data.time.max() - DELAY_H * 3600
    genuine = ~fraud & mature
    return {"tp": int(np.sum(fraud & flagged)), "fn": int(np.sum(fraud & ~flagged)),
            "fp": int(np.sum(genuine & flagged)), "tn": int(np.sum(genuine & ~flagged)),
            "pending": int(np.sum(~fraud & ~mature))}


def kill_at_progress(start, db_url, group, lo, hi, rng, label):
    """Start a member, let it commit a random lo..hi more offsets, SIGKILL it."""
    engine = connect(db_url)
    proc = start()
    base = committed_offsets(engine, group)
    target = base + rng.randint(lo, hi)
    deadline = time.monotonic() + 180
    while committed_offsets(engine, group) < target and proc.poll() is None:
        assert time.monotonic() < deadline, f"{label} made no progress"
        time.sleep(rng.uniform(0.002, 0.01))  # short: a fast member must not overshoot much
    assert proc.poll() is None, f"{label} exited before it could be killed: {proc.stderr.read()}"
    kill(proc)
    return committed_offsets(engine, group)


# PostgreSQL only: the same kills on SQLite are run by test_scorer_e2e's
# test_sigkill_three_times_then_exact; one database each keeps .ci/run within its time.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_delayed_labels_with_kills_equal_offline_join(kafka_bootstrap, new_topic,
                                                      tmp_path_factory, db_url, home):
    csv = str(write_csv(tmp_path_factory.mktemp("dt") / "delayed.csv", 50_000, fraud_rate=0.01,
                        seed=77))
    engine = setup_model(csv, db_url, home)
    tx, lab = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)
    ensure_topics(kafka_bootstrap, {f"{tx}.alerts": 1, f"{tx}.dlq": 1, f"{lab}.dlq": 1})
    summary = replay(csv, bootstrap=kafka_bootstrap, topic=tx, labels=f"delayed:{DELAY_H}h",
                     labels_topic=lab)
    assert summary.sent == 50_000 and summary.failed == 0
    frauds = int(np.sum(load_csv(csv).y == 1))
    assert summary.labels_sent == frauds
    rng = random.Random(int(os.environ.get("FRAUDSTREAM_TEST_SEED", "7")))

    def scorer():
        return scorer_process(kafka_bootstrap, tx, "dt-scorer", db_url, home,
                              "--batch-size", "500")

    def sink():
        return labels_process(kafka_bootstrap, lab, "dt-labels", db_url, home,
                              "--batch-size", "1")

    # Interleave: the label sink runs ahead of the scorer at first (labels before decisions).
    # Each kill target leaves room before the end even for a fast, unloaded machine (the sink
    # commits every label: ~1,000/s on SQLite here).
    at = [kill_at_progress(sink, db_url, "dt-labels", 30, frauds // 5, rng, "label sink"),
          kill_at_progress(scorer, db_url, "dt-scorer", 2_000, 12_000, rng, "scorer"),
          kill_at_progress(sink, db_url, "dt-labels", 30, frauds // 5, rng, "label sink"),
          kill_at_progress(scorer, db_url, "dt-scorer", 2_000, 12_000, rng, "scorer")]
    assert at[2] < frauds and at[3] < 50_000, at  # every kill landed mid-stream
    before = matured_counts(engine).rows  # a snapshot: counts while truth is still arriving
    final_sink = labels_process(kafka_bootstrap, lab, "dt-labels", db_url, home,
                                "--until-idle", "8")
    final_scorer = scorer_process(kafka_bootstrap, tx, "dt-scorer", db_url, home,
                                  "--until-idle", "8")
    assert finish(final_sink)["consumed"] == frauds - at[2]
    assert finish(final_scorer)["consumed"] == 50_000 - at[3]
    assert committed_offsets(engine, "dt-scorer") == 50_000
    assert committed_offsets(engine, "dt-labels") == frauds
    report = matured_counts(engine, __import__("datetime").timedelta(hours=DELAY_H))
    (row,) = report.rows
    got = {"tp": row.tp, "fn": row.fn, "fp": row.fp, "tn": row.tn, "pending": row.pending}
    assert got == offline_matured(engine, csv, home)
    assert row.decisions == 50_000 and report.orphans == 0 and row.labelled == frauds
    assert before and before[0].decisions < 50_000
    print(json.dumps({"matured": got, "snapshot_decisions": before[0].decisions}))
