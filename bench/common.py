"""Shared benchmark plumbing: a Kafka broker for the run, databases (SQLite in a temp dir and
PostgreSQL when a URL is given), a bare-consumer reference, statistics, and an optional profiler.

PostgreSQL URLs: ``--db postgresql+psycopg://...`` (that backend only), or ``--backends
sqlite,postgresql`` with the URL from ``--pg-url`` or ``$FRAUDSTREAM_BENCH_PG_URL``. A
PostgreSQL database given to a bench is reset (``DROP SCHEMA public CASCADE``): use a database
reserved for benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_ENV = "FRAUDSTREAM_BENCH_PG_URL"


@contextlib.contextmanager
def bench_broker(tmp: Path) -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local broker in ``tmp`` for the run."""
    from producer.broker import LocalBroker, free_port

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield bootstrap
        return
    broker = LocalBroker(tmp / "kafka", port=free_port())
    try:
        yield broker.up()
    finally:
        broker.down()


@dataclass(frozen=True)
class ReplayedTopics:
    """What an A/B scorer bench scores: a temp dir, the broker, the synthetic CSV, and one
    replayed topic per label mode (``{mode: (topic, events sent)}``; alerts/DLQ topics beside)."""

    tmp: Path
    bootstrap: str
    csv: Path
    topics: dict[str, tuple[str, int]]


@contextlib.contextmanager
def replayed_topics(prefix: str, rows: int,
                    label_modes: Sequence[str] = ("none",)) -> Iterator[ReplayedTopics]:
    """A broker (:func:`bench_broker`) with ``rows`` synthetic events (seed 7) replayed onto a
    3-partition topic per label mode, in a temp dir removed afterwards. Quiets Kafka's and
    TensorFlow's logging for the bench's output."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from producer.replay import replay
    from producer.topics import ensure_topics
    from trainer.synth import write_csv

    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp_name, \
            bench_broker(Path(tmp_name)) as bootstrap:
        tmp = Path(tmp_name)
        csv = write_csv(tmp / "creditcard.csv", rows, seed=7)
        run = uuid.uuid4().hex[:8]
        topics: dict[str, tuple[str, int]] = {}
        for mode in label_modes:
            topic = f"{prefix}-{mode}-{run}"
            ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
            topics[mode] = (topic, replay(str(csv), bootstrap=bootstrap, topic=topic,
                                          labels=mode).sent)
        yield ReplayedTopics(tmp, bootstrap, csv, topics)


@contextlib.contextmanager
def maybe_profile(enabled: bool, label: str = "") -> Iterator[None]:
    """Print a pyinstrument profile of the block when ``enabled``."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler()
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        if label:
            print(f"---- profile: {label} ----")
        print(profiler.output_text(unicode=True, color=False))


# --------------------------------------------------------------------------- databases


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="one database URL (default: SQLite in a temp dir); a "
                                     "postgresql URL is RESET by the bench")
    parser.add_argument("--backends", default=None,
                        help="comma-separated sqlite,postgresql (default: sqlite, plus "
                             f"postgresql when --pg-url or ${PG_ENV} is set)")
    parser.add_argument("--pg-url", default=os.environ.get(PG_ENV),
                        help=f"PostgreSQL URL for the postgresql backend (default ${PG_ENV}); "
                             "the database is RESET by the bench")


def scorer_ab_parser(description: str, *, repeats: int) -> argparse.ArgumentParser:
    """The flags of an A/B scorer benchmark (two variants, alternated, same topic, same run)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--train-rows", type=int, default=20_000,
                        help="rows the (throwaway) model is trained on")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=repeats, help="A/B pairs per variant")
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument one extra (uncounted) pair per backend")
    add_db_arguments(parser)
    return parser


def backends(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """[(backend name, URL or None for a fresh SQLite file)] to run, per the arguments. Prints
    a note when PostgreSQL is skipped for want of a URL."""
    if args.db:
        name = "postgresql" if args.db.startswith("postgresql") else "sqlite"
        return [(name, args.db)]
    wanted = ([b.strip() for b in args.backends.split(",") if b.strip()] if args.backends
              else ["sqlite", "postgresql"])
    out: list[tuple[str, str | None]] = []
    for name in wanted:
        if name == "sqlite":
            out.append(("sqlite", None))
        elif name == "postgresql":
            if args.pg_url:
                out.append(("postgresql", args.pg_url))
            else:
                print(f"note: PostgreSQL skipped (no --pg-url and ${PG_ENV} not set)")
        else:
            raise SystemExit(f"unknown backend {name!r} (sqlite, postgresql)")
    return out


def reset_postgres(url: str) -> None:
    """Empty a PostgreSQL database reserved for benchmarks (drop and recreate ``public``)."""
    import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)

    from store.db import empty_postgres

    empty_postgres(url)


def fresh_db(url: str | None, directory: Path, name: str = "bench") -> str:
    """A URL of an empty database: ``url`` (PostgreSQL, reset) or a new SQLite file."""
    if url and url.startswith("postgresql"):
        reset_postgres(url)
        return url
    if url:
        return url
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / f'{name}-{uuid.uuid4().hex[:6]}.db'}"


def redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def train_small(rows: int, tmp: Path, db: str, home: Path) -> None:
    """Register a model in ``db`` trained briefly on ``rows`` synthetic rows (the bench cares
    about the work per event, not the model's quality)."""
    from trainer.pipeline import train
    from trainer.synth import write_csv

    csv = tmp / f"train-{rows}.csv"
    if not csv.exists():
        write_csv(csv, rows, seed=3)
    train(str(csv), epochs=2, seed=1, db=db, home=home)


TABLES = ("decisions", "alerts", "labels", "card_state", "keyed_transactions", "stream_clocks")


def empty_tables(engine: Any) -> None:
    """Empty the tables a scorer run writes, so every run starts from the same state."""
    from sqlalchemy import text

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside a transaction (the engine BEGINs IMMEDIATE)
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM ANALYZE {', '.join(TABLES)}")


def count(engine: Any, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def score_run(engine: Any, model: Any, bootstrap: str, topic: str, expected: int,
              batch_size: int, *, group: str, log_decisions: bool = True,
              **scorer_kwargs: Any) -> Any:
    """One scorer run over ``topic`` in a fresh consumer group ``<group>-<random>`` (until idle
    3 s), after :func:`empty_tables`; exits unless it consumed ``expected`` events, none
    dead-lettered. ``scorer_kwargs`` go to :class:`scorer.service.Scorer` (metrics, shadow…).
    Returns its :class:`scorer.service.ScoreSummary` (``rate``: events/s of busy time)."""
    from scorer.service import ScoreConfig, Scorer

    empty_tables(engine)
    config = ScoreConfig(bootstrap=bootstrap, topic=topic,
                         group_id=f"{group}-{uuid.uuid4().hex[:8]}", batch_size=batch_size,
                         until_idle=3, alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq",
                         log_decisions=log_decisions)
    summary = Scorer(config, engine, model, **scorer_kwargs).run()
    if summary.consumed != expected or summary.dlq:
        raise SystemExit(f"scorer consumed {summary.consumed} (dlq {summary.dlq}), "
                         f"expected {expected}")
    return summary


# --------------------------------------------------------------------------- references


def bare_consumer_rate(bootstrap: str, topic: str, expected: int
                       ) -> tuple[float, float, float]:
    """(events/s, seconds, process CPU seconds) of a bare kafka-python group consumer polling
    ``expected`` records, first to last (no decoding, no database). The CPU time is this whole
    process's (kafka-python's IO thread included), like a consumer's ``busy_cpu_seconds``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bare-{uuid.uuid4()}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=2000, fetch_max_bytes=16 * 1024 * 1024)
    seen, first, cpu_first = 0, None, 0.0
    while seen < expected:
        batch = consumer.poll(timeout_ms=1000, max_records=2000)
        n = sum(len(v) for v in batch.values())
        if n and first is None:
            first, cpu_first = time.monotonic(), time.process_time()
        seen += n
    seconds = time.monotonic() - (first or time.monotonic())
    cpu = time.process_time() - cpu_first
    consumer.close()
    return expected / seconds, seconds, cpu


# --------------------------------------------------------------------------- statistics


def decision_columns(n: int, first_offset: int) -> Any:
    """``n`` decision rows as the scorer builds them (:class:`store.columns.Columns`), with
    random transaction ids and offsets from ``first_offset``."""
    import numpy as np

    from store.columns import Columns, Micros

    now = int(time.time() * 1e6)
    return Columns({
        "transaction_id": [uuid.uuid4().hex for _ in range(n)], "model_version": [1] * n,
        "score": np.random.default_rng(first_offset).random(n).tolist(),
        "threshold": [0.5] * n, "flagged": [False] * n, "amount": [12.5] * n,
        "event_time": Micros(np.arange(first_offset, first_offset + n, dtype=np.int64) * 1000
                             + 1_700_000_000_000_000),
        "source_topic": ["transactions"] * n, "source_partition": [0] * n,
        "source_offset": list(range(first_offset, first_offset + n)),
        "scored_at": Micros(np.full(n, now, dtype=np.int64))})


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` (0..100) percentile of ``values``, linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def rounded(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def ab_summary(rates: dict[str, list[float]], a: str, b: str) -> dict[str, Any]:
    """An A/B throughput comparison measured as alternating pairs: ``rates[a]`` and
    ``rates[b]`` are events/s of run i of each variant; returns ``<a>_eps``, ``<b>_eps``, their
    medians, the per-pair ratios a/b and their median (the figure the benches report)."""
    ratios = [x / y for x, y in zip(rates[a], rates[b], strict=True)]
    return {f"{a}_eps": [round(r) for r in rates[a]], f"{b}_eps": [round(r) for r in rates[b]],
            f"median_{a}_eps": round(median(rates[a])), f"median_{b}_eps": round(median(rates[b])),
            "ratios": [round(r, 3) for r in ratios], "median_ratio": round(median(ratios), 3)}
