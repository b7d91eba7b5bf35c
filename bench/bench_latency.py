"""Produce → committed decision latency of every event, at a fixed rate and at half the scorer's
measured capacity (aim: p99 < 100 ms at both).

    .venv/bin/python bench/bench_latency.py [--capacity-events 40000] [--seconds 20]
        [--rates 2000,half] [--batch-size 2000] [--backends sqlite,postgresql] [--pg-url URL]

1. Capacity: a ``fraudstream score`` process drains a topic filled beforehand with
   ``--capacity-events`` events; its events/s (busy time) is the capacity.
2. For each rate (``half`` = half that capacity): a scorer process on a fresh topic, warmed up
   with a few events, then ``fraudstream replay --rate R`` paces events for ``--seconds``.
   Meanwhile this process reads ``consumer_offsets`` every few milliseconds: the moment a
   partition's stored offset passes an event's offset is when its decision was committed (the
   offsets and the decisions are one database transaction).
3. Afterwards every decision row of the topic (``source_partition``/``source_offset``) is matched
   with its record's Kafka timestamp (CreateTime: set by the producer when it sent the event):
   latency = commit seen - produced, for every decision, not only alerts. The observation step
   adds up to ``--observe-ms`` (default 2) to each figure.

Scorer and producer are separate processes (as deployed); the broker is
``KAFKA_BOOTSTRAP_SERVERS`` or a local one. PostgreSQL (``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL``)
is RESET.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
from common import (
    add_db_arguments,
    backends,
    bench_broker,
    empty_tables,
    fresh_db,
    percentile,
    redacted,
    train_small,
)

ROOT = Path(__file__).resolve().parents[1]
WARMUP_EVENTS = 30


def cli(*args: str, env: dict[str, str], profile: Path | None = None) -> subprocess.Popen[str]:
    """A ``fraudstream`` process; with ``profile``, under pyinstrument (its text report there)."""
    profiled = ["-m", "pyinstrument", "-r", "text", "-o", str(profile)] if profile else []
    return subprocess.Popen([sys.executable, *profiled, "-m", "fraudstream_cli", *args],
                            cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finished(proc: subprocess.Popen[str], what: str, timeout: float = 600) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def scorer(env: dict[str, str], topic: str, group: str, batch_size: int,
           until_idle: float | None = None, *extra: str,
           profile: Path | None = None) -> subprocess.Popen[str]:
    """A ``fraudstream score`` process (``extra``: more of its arguments; ``profile``: see
    :func:`cli`)."""
    idle = ["--until-idle", str(until_idle)] if until_idle else []
    return cli("score", "--topic", topic, "--group-id", group, "--batch-size", str(batch_size),
               "--alerts-topic", f"{topic}.alerts", "--dlq-topic", f"{topic}.dlq", "--json",
               *idle, *extra, env=env, profile=profile)


def replay(env: dict[str, str], csv: Path, topic: str, *, limit: int, skip: int = 0,
           rate: float | None = None) -> subprocess.Popen[str]:
    paced = ["--rate", str(rate)] if rate else []
    return cli("replay", "--csv", str(csv), "--topic", topic, "--labels", "none", "--limit",
               str(limit), "--skip", str(skip), "--json", *paced, env=env)


def committed(engine: Any, group: str) -> dict[int, int]:
    """{partition: next offset} the group has committed (one small indexed read)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT partition, next_offset FROM consumer_offsets "
                                      "WHERE group_id = :g"), {"g": group}).all())


def timestamps(bootstrap: str, topic: str, expected: int) -> dict[tuple[int, int], float]:
    """{(partition, offset): producer timestamp (s since the epoch)} of every record."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: dict[tuple[int, int], float] = {}
    deadline = time.monotonic() + 120
    while len(out) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
            for r in records:
                out[(r.partition, r.offset)] = r.timestamp / 1000
    consumer.close()
    return out


def paced_run(engine: Any, env: dict[str, str], bootstrap: str, csv: Path, rate: float,
              args: argparse.Namespace) -> dict[str, Any]:
    """Latencies of ``rate`` events/s for ``args.seconds`` through a fresh scorer process."""
    from sqlalchemy import text

    from producer.topics import ensure_topics

    empty_tables(engine)  # the same rows (ids) as the previous run's
    topic, group = f"bench-lat-{uuid.uuid4().hex[:8]}", f"bench-lat-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
    profile = Path(env["FRAUDSTREAM_HOME"]) / f"profile-{topic}.txt" \
        if getattr(args, "profile", False) else None
    proc = scorer(env, topic, group, args.batch_size, profile=profile)
    finished(replay(env, csv, topic, limit=WARMUP_EVENTS), "warm-up replay")
    deadline = time.monotonic() + 180
    while sum(committed(engine, group).values()) < WARMUP_EVENTS:  # joined, model loaded
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the scorer did not score the warm-up events")
        time.sleep(0.2)
    n = int(rate * args.seconds)
    producer = replay(env, csv, topic, limit=n, skip=WARMUP_EVENTS, rate=rate)
    seen: dict[int, int] = committed(engine, group)
    commits: list[tuple[float, int, int]] = []  # (wall time, partition, next offset)
    step = args.observe_ms / 1000
    while sum(seen.values()) < WARMUP_EVENTS + n:
        now = committed(engine, group)
        at = time.time()
        for p, offset in now.items():
            if offset != seen.get(p):
                commits.append((at, p, offset))
        seen = now
        if producer.poll() is not None and producer.returncode != 0:
            break
        if proc.poll() is not None:
            raise SystemExit(f"the scorer stopped: {proc.communicate()[1][-2000:]}")
        time.sleep(step)
    sent = finished(producer, "paced replay")
    proc.send_signal(signal.SIGTERM)
    summary = finished(proc, "scorer")
    if profile is not None:
        print(f"---- profile of the paced scorer ({rate:,.0f}/s) ----\n{profile.read_text()}")
    produced = timestamps(bootstrap, topic, WARMUP_EVENTS + n)
    with engine.connect() as conn:
        decided = conn.execute(text("SELECT source_partition, source_offset FROM decisions "
                                    "WHERE source_topic = :t"), {"t": topic}).all()
    if len(decided) != WARMUP_EVENTS + n:
        raise SystemExit(f"{len(decided)} decisions for {WARMUP_EVENTS + n} events")
    warmup = first_offsets(produced, WARMUP_EVENTS)
    paced = sorted(1000 * (at - produced[key])
                   for key, at in commit_times(commits, decided, produced).items()
                   if key not in warmup)
    return {"rate": round(rate), "events": n, "replay_rate": sent["rate"],
            "decisions": len(decided), "scored": summary["scored"],
            "p50_ms": round(percentile(paced, 50), 1), "p95_ms": round(percentile(paced, 95), 1),
            "p99_ms": round(percentile(paced, 99), 1), "max_ms": round(paced[-1], 1),
            "deferred": summary.get("deferred"),
            "busy_cpu_seconds": summary.get("busy_cpu_seconds")}


def first_offsets(produced: dict[tuple[int, int], float], k: int) -> set[tuple[int, int]]:
    """The ``k`` earliest records by producer timestamp (the warm-up)."""
    return set(sorted(produced, key=produced.__getitem__)[:k])


def commit_times(commits: Sequence[tuple[float, int, int]], decided: Sequence[Any],
                 produced: dict[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    """{(partition, offset): when the commit holding its decision was first seen}."""
    offsets: dict[int, list[int]] = {}  # per partition, in commit order (offsets only grow)
    times: dict[int, list[float]] = {}
    for at, p, offset in commits:
        offsets.setdefault(p, []).append(offset)
        times.setdefault(p, []).append(at)
    out: dict[tuple[int, int], float] = {}
    for p, o in decided:
        if (p, o) not in produced:
            raise SystemExit(f"decision for partition {p} offset {o} has no record")
        out[(p, o)] = times[p][bisect.bisect_right(offsets[p], o)]  # first commit past it
    return out


def run_backend(name: str, url: str | None, tmp: Path, bootstrap: str,
                args: argparse.Namespace) -> dict[str, Any]:
    from producer.topics import ensure_topics
    from store.db import connect
    from trainer.synth import write_csv

    home = tmp / f"home-{name}"
    home.mkdir()
    db = fresh_db(url, tmp / name)
    train_small(args.train_rows, tmp, db, home)
    engine = connect(db)
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "FRAUDSTREAM_DB_URL": db, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rates = [r.strip() for r in args.rates.split(",")]
    biggest = max([args.capacity_events] + [int(float(r) * args.seconds) for r in rates
                                            if r != "half"])
    csv = tmp / "events.csv"
    if not csv.exists():
        write_csv(csv, biggest * 2 + WARMUP_EVENTS, seed=7)
    topic = f"bench-cap-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
    finished(replay(env, csv, topic, limit=args.capacity_events), "capacity replay")
    capacity = finished(scorer(env, topic, f"bench-cap-{uuid.uuid4().hex[:8]}",
                               args.batch_size, until_idle=3), "capacity scorer")["rate"]
    print(f"{name}: capacity {capacity:,.0f} events/s ({args.capacity_events:,} events)",
          flush=True)
    needed = WARMUP_EVENTS + max(int((capacity / 2 if r == "half" else float(r)) * args.seconds)
                                 for r in rates)
    if needed > biggest * 2:  # a paced run must not wait for events the file does not have
        csv = tmp / f"events-{needed}.csv"
        write_csv(csv, needed, seed=7)
    runs = []
    for r in rates:
        rate = capacity / 2 if r == "half" else float(r)
        result = paced_run(engine, env, bootstrap, csv, rate, args)
        result["label"] = "half capacity" if r == "half" else f"{rate:,.0f}/s"
        print(f"  {result['label']:<14} {result['rate']:>6,}/s: p50 {result['p50_ms']:>7.1f} ms"
              f"  p95 {result['p95_ms']:>7.1f} ms  p99 {result['p99_ms']:>7.1f} ms  max "
              f"{result['max_ms']:>7.1f} ms  ({result['decisions']:,} decisions; replay kept "
              f"{result['replay_rate']:,.0f}/s)", flush=True)
        runs.append(result)
    engine.dispose()
    return {"db": redacted(db), "capacity_eps": round(capacity), "runs": runs}


def paced_arguments(parser: argparse.ArgumentParser) -> None:
    """The paced run's arguments (and the databases'), shared with ``bench_keyed``."""
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each paced run")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--observe-ms", type=float, default=2.0,
                        help="how often consumer_offsets is read (ms)")
    add_db_arguments(parser)


def each_backend(args: argparse.Namespace, prefix: str,
                 run: Callable[[str, str | None, Path, str, argparse.Namespace], dict[str, Any]]
                 ) -> dict[str, Any]:
    """{backend: ``run(backend, url, tmp, bootstrap, args)``} on one broker, in a temp dir."""
    results = {}
    with tempfile.TemporaryDirectory(prefix=prefix) as name, \
            bench_broker(Path(name)) as bootstrap:
        for backend, url in backends(args):
            results[backend] = run(backend, url, Path(name), bootstrap, args)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity-events", type=int, default=40_000)
    parser.add_argument("--rates", default="2000,half",
                        help="comma-separated events/s; 'half' = half the measured capacity")
    parser.add_argument("--train-rows", type=int, default=20_000)
    paced_arguments(parser)
    args = parser.parse_args()
    results = each_backend(args, "bench-latency-", run_backend)
    print("(produce -> committed decision, every decision; aim p99 < 100 ms)")
    print(json.dumps({"bench": "latency", "seconds": args.seconds, "results": results}))


if __name__ == "__main__":
    main()
