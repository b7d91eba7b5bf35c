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
import os
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
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
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


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


# --------------------------------------------------------------------------- references


def bare_consumer_rate(bootstrap: str, topic: str, expected: int) -> tuple[float, float]:
    """(events/s, seconds) of a bare kafka-python group consumer polling ``expected`` records,
    first to last (no decoding, no database)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bare-{uuid.uuid4()}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=2000, fetch_max_bytes=16 * 1024 * 1024)
    seen, first = 0, None
    while seen < expected:
        batch = consumer.poll(timeout_ms=1000, max_records=2000)
        n = sum(len(v) for v in batch.values())
        if n and first is None:
            first = time.monotonic()
        seen += n
    seconds = time.monotonic() - (first or time.monotonic())
    consumer.close()
    return expected / seconds, seconds


# --------------------------------------------------------------------------- statistics


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
