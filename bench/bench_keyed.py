"""Keyed scoring's speed (issue 20), per backend, everything measured in the same run:

    .venv/bin/python bench/bench_keyed.py [--events 30000] [--cards 1000000] [--rate 2000]
        [--seconds 20] [--backends sqlite,postgresql] [--pg-url URL] [--repeat 3]
        [--only-ratio] [--profile]

1. Keyed vs stateless: ``--events`` events through a ``fraudstream score`` process with a keyed
   model (behaviour features: per-card state and terminal windows read and written with every
   batch) and the same number through one with a stateless (ULB) model of the same family
   (xgboost), on the same broker and database; events/s while busy and their ratio (aim >= 0.6),
   ``--repeat`` pairs alternated (the machine's load hits both alike), the median ratio kept.
2. ``--cards`` distinct cards in the store (``card_state`` seeded as the keyed scorer writes it,
   each card holding the simulator's mean number of transactions over the longest window): the
   state's size in the store, then a fresh keyed scorer process on a topic of those cards'
   events: seconds from its start to its first committed batch (aim < 10 s) and its RSS.
3. Produce -> committed decision latency of the keyed scorer at ``--rate`` events/s
   (``bench_latency.paced_run``: every decision, p50/p95/p99/max; aim p99 < 100 ms).

Scorers and producers are separate processes (``bench_latency``'s machinery); the broker is
``KAFKA_BOOTSTRAP_SERVERS`` or a local one. PostgreSQL (``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL``)
is RESET.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (before TensorFlow: see trainer.model.load_keras)
from bench_latency import (
    committed,
    each_backend,
    finished,
    paced_arguments,
    paced_run,
    replay,
    scorer,
)
from common import empty_tables, fresh_db

DAY_US = 86_400_000_000


def train_model(csv: Path, db: str) -> int:
    """Train and register an xgboost model on ``csv`` (a keyed CSV: with behaviour features);
    its version."""
    from fraudstream_cli import main as cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["train", "--csv", str(csv), "--family", "xgboost", "--db", db,
                    "--json"]) == 0
    return int(json.loads(out.getvalue())["version"])


def drain_rate(env: dict[str, str], csv: Path, bootstrap: str, events: int, batch_size: int,
               version: int, profile: Path | None = None) -> tuple[float, float]:
    """Events/s (busy) of a scorer process with model ``version`` draining ``events`` events,
    and events per CPU second of that process (0 if it does not say) (``profile``: a
    pyinstrument report of that process written there)."""
    from producer.topics import ensure_topics

    topic = f"bench-keyed-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
    finished(replay(env, csv, topic, limit=events), "replay")
    summary = finished(scorer(env, topic, f"g-{uuid.uuid4().hex[:8]}", batch_size, 3,
                              "--model-version", str(version), profile=profile), "scorer")
    if summary["scored"] != events:
        raise SystemExit(f"scored {summary['scored']} of {events} events: {summary}")
    if summary.get("deferred"):
        print(f"  ({summary['deferred']:,} events deferred and re-read)", flush=True)
    cpu = summary.get("busy_cpu_seconds") or 0.0
    return float(summary["rate"]), summary["consumed"] / cpu if cpu else 0.0


def seed_cards(engine: Any, group: str, cards: int, per_card: int, end_us: int) -> float:
    """``cards`` card windows of ``per_card`` transactions (spread over the 30 days before
    ``end_us``) for ``group``, written by the keyed scorer's own state writer; seconds taken."""
    import numpy as np

    from scorer.keyed_features import CardWindow
    from scorer.keyed_store import write_state

    rng = np.random.default_rng(3)
    started = time.monotonic()
    step = 20_000
    for lo in range(0, cards, step):
        windows = {}
        for card in range(lo, min(lo + step, cards)):
            times = np.sort(end_us - rng.integers(1, 30 * DAY_US, per_card))
            windows[str(card)] = CardWindow(times, np.round(rng.gamma(2.0, 30.0, per_card), 2))
        with engine.begin() as conn:
            write_state(conn, group, "-", windows, [], {})
    return time.monotonic() - started


def state_bytes(engine: Any) -> int:
    """Bytes ``card_state`` takes in the store (PostgreSQL: with its index and TOAST; SQLite: the
    pages of the table and its primary-key index)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(conn.execute(text("SELECT pg_total_relation_size('card_state')")).scalar())
        return int(conn.exec_driver_sql(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
            "('card_state', 'sqlite_autoindex_card_state_1')").scalar())


def rss_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def restart(env: dict[str, str], csv: Path, bootstrap: str, group: str, version: int,
            engine: Any, batch_size: int) -> dict[str, Any]:
    """A keyed scorer process started on ``group`` (its cards seeded): seconds from its start to
    its first committed batch, and its memory then and at the end of the topic."""
    from producer.topics import ensure_topics

    topic = f"bench-restart-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
    finished(replay(env, csv, topic, limit=4 * batch_size), "replay")
    started = time.monotonic()
    proc = scorer(env, topic, group, batch_size, None, "--model-version", str(version))
    while not committed(engine, group):
        if proc.poll() is not None or time.monotonic() - started > 600:
            raise SystemExit(f"no batch committed: {proc.communicate()[1][-2000:]}")
        time.sleep(0.01)
    first = time.monotonic() - started
    at_first = rss_mb(proc.pid)
    while sum(committed(engine, group).values()) < 4 * batch_size:
        time.sleep(0.1)
    at_end = rss_mb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    finished(proc, "keyed scorer")
    return {"first_commit_s": round(first, 2), "rss_mb_at_first_commit": at_first["VmRSS"],
            "rss_mb_after": at_end["VmRSS"], "peak_rss_mb": at_end["VmHWM"]}


def run_backend(name: str, url: str | None, tmp: Path, bootstrap: str,
                args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from store import registry
    from store.db import connect
    from trainer.keyed_synth import SimulationParams, write_keyed_csv
    from trainer.synth import write_csv

    home = tmp / f"home-{name}"
    home.mkdir()
    db = fresh_db(url, tmp / name)
    env = {**os.environ, "FRAUDSTREAM_HOME": str(home), "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "FRAUDSTREAM_DB_URL": db, "TF_CPP_MIN_LOG_LEVEL": "3"}
    os.environ["FRAUDSTREAM_HOME"] = str(home)
    keyed_csv, plain_csv = tmp / "keyed.csv", tmp / "plain.csv"
    n = max(args.events, int(args.rate * args.seconds)) + 100
    customers = max(100, n // 15)
    while not keyed_csv.exists() or sum(1 for _ in keyed_csv.open()) <= n:
        write_keyed_csv(keyed_csv, SimulationParams(customers=customers, terminals=2_000,
                                                    days=30, seed=1))
        customers *= 2
    if not plain_csv.exists():
        write_csv(plain_csv, 2 * n, seed=7)
    plain_version = train_model(plain_csv, db)  # the same family for both: only state differs
    version = train_model(keyed_csv, db)
    engine = connect(db)
    if args.only_latency:
        registry.promote(engine, version, decided_by="person:bench", home=home)
        return {"db": name, "latency": paced_run(engine, env, bootstrap, keyed_csv, args.rate,
                                                 args)}
    profile = tmp / f"profile-{name}.txt" if args.profile else None
    pairs, cpu_ratios = [], []  # stateless, keyed drains alternated: load hits both alike
    for _ in range(args.repeat):
        plain, plain_cpu = drain_rate(env, plain_csv, bootstrap, args.events, args.batch_size,
                                      plain_version)
        keyed, keyed_cpu = drain_rate(env, keyed_csv, bootstrap, args.events, args.batch_size,
                                      version, profile)
        cpu = f"; per CPU second {keyed_cpu / plain_cpu:.3f}" if plain_cpu and keyed_cpu else ""
        print(f"  keyed {keyed:,.0f} events/s, stateless {plain:,.0f} events/s -> "
              f"{keyed / plain:.3f}{cpu}", flush=True)
        pairs.append((plain, keyed))
        if cpu:
            cpu_ratios.append(keyed_cpu / plain_cpu)
    ratio = statistics.median(k / p for p, k in pairs)
    plain = statistics.median(p for p, _ in pairs)
    keyed = statistics.median(k for _, k in pairs)
    cpu_ratio = round(statistics.median(cpu_ratios), 3) if cpu_ratios else None
    print(f"{name}: keyed {keyed:,.0f} events/s, stateless {plain:,.0f} events/s (medians) -> "
          f"median ratio {ratio:.3f}, per scorer CPU second {cpu_ratio} ({args.repeat} pairs "
          f"of {args.events:,} events)", flush=True)
    if profile is not None:
        print(f"---- profile of the keyed scorer ({name}) ----\n{profile.read_text()}")
    if args.only_ratio:
        return {"db": name, "keyed_eps": round(keyed), "stateless_eps": round(plain),
                "keyed_vs_stateless": round(ratio, 3), "per_cpu_second": cpu_ratio}

    frame = pd.read_csv(keyed_csv, usecols=["TX_DATETIME", "CUSTOMER_ID"])
    per_card = max(1, round(len(frame) / frame["CUSTOMER_ID"].nunique()))  # over its 30 days
    start_us = int(pd.Timestamp(frame["TX_DATETIME"].min(), tz="UTC").value // 1000)
    group = f"bench-cards-{uuid.uuid4().hex[:8]}"
    seeded_s = seed_cards(engine, group, args.cards, per_card, start_us)
    size = state_bytes(engine)
    print(f"  {args.cards:,} cards x {per_card} transactions: card_state {size / 2**20:,.0f} MiB"
          f" ({size / args.cards:,.0f} bytes/card; seeded in {seeded_s:,.0f} s)", flush=True)
    restarted = restart(env, keyed_csv, bootstrap, group, version, engine, args.batch_size)
    print(f"  restart with them: first batch committed {restarted['first_commit_s']} s after "
          f"start; RSS {restarted['rss_mb_at_first_commit']} MiB then, "
          f"{restarted['rss_mb_after']} MiB after 4 batches", flush=True)

    registry.promote(engine, version, decided_by="person:bench", home=home)
    empty_tables(engine)
    latency = paced_run(engine, env, bootstrap, keyed_csv, args.rate, args)
    print(f"  keyed at {latency['rate']:,}/s: p50 {latency['p50_ms']} ms  p95 "
          f"{latency['p95_ms']} ms  p99 {latency['p99_ms']} ms  max {latency['max_ms']} ms "
          f"({latency['decisions']:,} decisions; replay kept {latency['replay_rate']:,.0f}/s)",
          flush=True)
    engine.dispose()
    return {"db": name, "keyed_eps": round(keyed), "stateless_eps": round(plain),
            "keyed_vs_stateless": round(ratio, 3), "per_cpu_second": cpu_ratio,
            "cards": args.cards,
            "transactions_per_card": per_card, "card_state_bytes": size, **restarted,
            "latency": latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="stateless/keyed drain pairs (the median ratio is reported)")
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument the keyed scorers (drain, paced run): slower figures")
    parser.add_argument("--only-latency", action="store_true",
                        help="measure the keyed latency only (part 3)")
    parser.add_argument("--only-ratio", action="store_true",
                        help="measure the keyed/stateless ratio only (part 1)")
    paced_arguments(parser)
    args = parser.parse_args()
    results = each_backend(args, "bench-keyed-", run_backend)
    print(json.dumps({"bench": "keyed", "results": results}))


if __name__ == "__main__":
    main()
