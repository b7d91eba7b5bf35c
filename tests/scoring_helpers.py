"""Helpers for the scorer's integration tests: a registered model, replays, subprocess scorers,
and the offline reference result the streaming result must equal exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Engine, func, select

from producer.replay import replay, source_tag, transaction_id
from producer.topics import ensure_topics
from scorer.model import load_model
from scorer.service import ScoreConfig, Scorer
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


def run_in_process(bootstrap: str, topic: str, engine: Any, home: Path, group: str = "g",
                   **kw: Any) -> Any:
    config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id=group,
                         until_idle=kw.pop("until_idle", 4), alerts_topic=f"{topic}.alerts",
                         dlq_topic=f"{topic}.dlq", **kw)
    ensure_topics(bootstrap, {f"{topic}.alerts": 1, f"{topic}.dlq": 1})
    return Scorer(config, engine, load_model(engine, home=home)).run()


def send(bootstrap: str, topic: str, values: Sequence[bytes], *, key: bytes | None = None,
         ) -> list[str]:
    """Send ``values`` (round-robin over 3 partitions); return their "topic/partition/offset"."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                             max_request_size=2 * 1024 * 1024)
    futures = [producer.send(topic, key=key or f"k{i}".encode(), value=v, partition=i % 3)
               for i, v in enumerate(values)]
    producer.flush(timeout=60)
    where = [f"{topic}/{m.partition}/{m.offset}" for m in (f.get(timeout=60) for f in futures)]
    producer.close()
    return where


def read_all(bootstrap: str, topic: str, timeout_ms: int = 6000) -> list[Any]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=timeout_ms, fetch_max_bytes=8 * 1024 * 1024)
    try:
        return list(consumer)
    finally:
        consumer.close()


def wait_for_members(bootstrap: str, group: str, n: int, timeout: float = 180) -> None:
    """Wait until ``n`` members have joined consumer group ``group`` (its coordinator may not
    exist yet when the first member is still starting)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout

    def members() -> int:
        try:
            return len(admin.describe_groups([group])[group]["members"])
        except KafkaError:
            return 0

    try:
        while members() < n:
            assert time.monotonic() < deadline, f"{n} members never joined {group}"
            time.sleep(0.5)
    finally:
        admin.close()


def decided_ids(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(decisions.c.transaction_id)).scalars())


def combined(a: Expected, b: Expected) -> Expected:
    return Expected(tp=a.tp + b.tp, fp=a.fp + b.fp, tn=a.tn + b.tn, fn=a.fn + b.fn,
                    alert_ids=a.alert_ids | b.alert_ids)
