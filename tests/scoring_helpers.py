"""Helpers for the scorer's integration tests: a registered model, replays, subprocess scorers,
and the offline reference result the streaming result must equal exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, func, select

from producer.replay import replay, source_tag, transaction_id
from producer.topics import ensure_topics
from scorer.model import load_model
from store.counts import matured_counts
from store.db import connect
from store.tables import alerts, consumer_offsets, decisions
from trainer.data import load_csv
from trainer.pipeline import train


@dataclass(frozen=True)
class Expected:
    tp: int
    fp: int
    tn: int
    fn: int
    alert_ids: frozenset[str]


def offline_reference(engine: Engine, csv: str, home: Path, ids: list[str]) -> Expected:
    """Score every row of ``csv`` in one batch with the production model: the exact answer."""
    model = load_model(engine, "production", home=home)
    data = load_csv(csv)
    flagged = model.score_raw(data.raw) >= model.threshold
    fraud = data.y == 1
    return Expected(tp=int(np.sum(flagged & fraud)), fp=int(np.sum(flagged & ~fraud)),
                    tn=int(np.sum(~flagged & ~fraud)), fn=int(np.sum(~flagged & fraud)),
                    alert_ids=frozenset(i for i, f in zip(ids, flagged, strict=True) if f))


def streamed_result(engine: Engine) -> Expected:
    """The product's counts (decisions ⋈ labels, every unlabelled decision genuine) and alerts."""
    (row,) = matured_counts(engine).rows
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(alerts.c.transaction_id))]
        flagged = {r[0] for r in conn.execute(
            select(decisions.c.transaction_id).where(decisions.c.flagged.is_(True)))}
    assert len(ids) == len(set(ids)), "duplicate alert rows"
    assert set(ids) == flagged, "alerts and flagged decisions differ"
    assert row.pending == 0
    return Expected(tp=row.tp, fp=row.fp, tn=row.tn, fn=row.fn, alert_ids=frozenset(ids))


def committed_offsets(engine: Engine, group: str) -> int:
    with engine.connect() as conn:
        total = conn.execute(select(func.sum(consumer_offsets.c.next_offset))
                             .where(consumer_offsets.c.group_id == group)).scalar()
    return int(total or 0)


def setup_model(csv: str, db_url: str, home: Path) -> Engine:
    train(csv, epochs=2, seed=3, db=db_url, home=home)
    return connect(db_url)


def replay_all(csv: str, bootstrap: str, topic: str) -> list[str]:
    """Replay ``csv`` completely; return the transaction ids in file order."""
    ensure_topics(bootstrap, {topic: 3})
    summary = replay(csv, bootstrap=bootstrap, topic=topic, partitions=3)
    assert summary.failed == 0 and summary.invalid == 0
    tag = source_tag(csv)  # ids are "<file stem>-<CSV line number>", the header being line 1
    return [transaction_id(tag, line) for line in range(2, summary.sent + 2)]


def scorer_process(bootstrap: str, topic: str, group: str, db_url: str, home: Path,
                   *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "FRAUDSTREAM_DB_URL": db_url}
    cmd = [sys.executable, "-m", "fraudstream_cli", "score", "--topic", topic, "--group-id", group,
           "--alerts-topic", f"{topic}.alerts", "--dlq-topic", f"{topic}.dlq", "--json", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
