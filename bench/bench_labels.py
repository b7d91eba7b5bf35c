"""Label sink throughput: ``consume_labels`` (Kafka → decode → ``labels`` rows + offsets in one
SQL commit) vs a bare kafka-python consumer draining the same topic in the same run, on SQLite
and PostgreSQL.

    .venv/bin/python bench/bench_labels.py [--rows 200000] [--batch-size 2000]
        [--backends sqlite,postgresql] [--pg-url URL | --db URL] [--profile]

Produces ``rows`` distinct ``label.v1`` events (distinct ``label_id``; a mix of fraud/genuine,
chargeback/analyst, with and without a reason) onto a fresh topic, then runs the label sink in
a fresh consumer group per backend with ``until_idle`` and reports labels/s while busy (first
record to last commit). Aim: >= 20,000 labels/s. PostgreSQL from ``--pg-url``/
``$FRAUDSTREAM_BENCH_PG_URL`` (or ``--db``) is RESET.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg  # noqa: F401  (a PostgreSQL driver before anything else heavy)
from common import (
    add_db_arguments,
    backends,
    bare_consumer_rate,
    bench_broker,
    fresh_db,
    maybe_profile,
    redacted,
)

AIM = 20_000


def label_payloads(n: int) -> list[tuple[bytes, bytes]]:
    """``n`` distinct label.v1 events as (key, value), like the ops desk and replay send."""
    base = datetime(2013, 9, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        tid = f"bench-{i // 2:09d}"  # two labels per transaction (a correction)
        event: dict[str, Any] = {
            "schema_version": 1, "label_id": f"bench:{i:09d}", "transaction_id": tid,
            "label": "fraud" if i % 7 == 0 else "genuine",
            "source": ("chargeback", "analyst", "replay")[i % 3],
            "observed_at": (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")}
        if i % 2:
            event["reason"] = "analyst review after chargeback dispute"
        out.append((tid.encode(), json.dumps(event, separators=(",", ":")).encode()))
    return out


def produce(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]]) -> float:
    from kafka import KafkaProducer

    from producer.replay import _PRODUCER_CONFIG

    producer = KafkaProducer(bootstrap_servers=bootstrap, **_PRODUCER_CONFIG)
    start = time.monotonic()
    futures = [producer.send(topic, key=k, value=v) for k, v in payloads]
    producer.flush()
    seconds = time.monotonic() - start
    producer.close()
    failed = sum(1 for f in futures if not f.succeeded())
    if failed:
        raise SystemExit(f"{failed} label sends failed")
    return seconds


def sink_once(name: str, url: str | None, tmp: Path, bootstrap: str, topic: str, n: int,
              args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from labels.service import consume_labels
    from store.db import connect
    from store.tables import labels
    from stream import ConsumerConfig

    db = fresh_db(url, tmp / name)
    engine = connect(db)
    config = ConsumerConfig(bootstrap=bootstrap, topic=topic,
                            group_id=f"bench-labels-{uuid.uuid4().hex[:8]}",
                            dlq_topic=f"{topic}.dlq", client_id="fraudstream-labels",
                            batch_size=args.batch_size, until_idle=3)
    with maybe_profile(args.profile, f"{name} label sink"):
        summary = consume_labels(config, engine)
    with engine.connect() as conn:
        stored = int(conn.execute(select(func.count()).select_from(labels)).scalar() or 0)
    engine.dispose()
    if summary.consumed != n or stored != n or summary.dlq:
        raise SystemExit(f"{name}: consumed {summary.consumed}, stored {stored}, "
                         f"dlq {summary.dlq}; expected {n}")
    return {"db": redacted(db), "labels_per_s": round(summary.rate),
            "busy_seconds": round(summary.busy_seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="label events")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the sink runs")
    add_db_arguments(parser)
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    from producer.topics import ensure_topics

    chosen = backends(args)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp_name, \
            bench_broker(Path(tmp_name)) as bootstrap:
        tmp = Path(tmp_name)
        topic = f"bench-labels-{uuid.uuid4().hex[:8]}"
        ensure_topics(bootstrap, {topic: 3, f"{topic}.dlq": 1})
        produced_s = produce(bootstrap, topic, label_payloads(args.rows))
        bare, bare_s, _ = bare_consumer_rate(bootstrap, topic, args.rows)
        for name, url in chosen:
            results[name] = sink_once(name, url, tmp, bootstrap, topic, args.rows, args)

    print(f"label events                  {args.rows:>10,}  (produced in {produced_s:.2f} s)")
    print(f"bare kafka-python drain       {bare:>10,.0f} events/s  ({bare_s:.2f} s)")
    for name, r in results.items():
        print(f"label sink on {name:<15} {r['labels_per_s']:>10,} labels/s  "
              f"({r['busy_seconds']:.2f} s; {r['labels_per_s'] / bare:.3f}x bare; "
              f"aim >= {AIM:,})")
    print(json.dumps({"bench": "labels", "events": args.rows, "batch_size": args.batch_size,
                      "bare_consumer_eps": round(bare), "bare_consumer_seconds": round(bare_s, 2),
                      "results": {k: {**v, "vs_bare": round(v["labels_per_s"] / bare, 3)}
                                  for k, v in results.items()}}))


if __name__ == "__main__":
    main()
