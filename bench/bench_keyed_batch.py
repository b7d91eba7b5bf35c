"""A keyed batch's cost by its size, without Kafka (what bounds keyed latency at a low rate):

    .venv/bin/python bench/bench_keyed_batch.py [--sizes 1,10,100,1000] [--rounds 5]
        [--backends sqlite,postgresql] [--pg-url URL]

A simulated keyed stream (``trainer.keyed_synth``) is scored through
:class:`scorer.keyed.KeyedPipeline` — decode, plan, state reads, features, a one-unit dense
model, effects — and each batch committed as the consumer commits one (decisions, alerts,
cases, card state, keyed transactions, clocks; the offsets table is not touched). After a
warm-up that fills the card and terminal state, batches of each size are timed in rotation
(``--rounds`` each, medians); a straight line through (size, seconds) gives the fixed cost of a
batch and the cost of each event. PostgreSQL (``--pg-url``/``$FRAUDSTREAM_BENCH_PG_URL``) is
RESET.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from common import add_db_arguments, backends, fresh_db

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests' keyed model
WARMUP = 6_000


def keyed_events(path: Path) -> list[dict[str, Any]]:
    """The events of a simulated keyed CSV, in time order, as replay writes them."""
    import csv

    from producer.keyed_replay import keyed_event
    from schemas.keyed import KEYED_CSV_COLUMNS
    from trainer.keyed_synth import SimulationParams, write_keyed_csv

    write_keyed_csv(path, SimulationParams(customers=3_000, terminals=2_000, days=30, seed=1))
    with path.open() as f:
        reader = csv.reader(f)
        header = next(reader)
        order = [header.index(c) for c in KEYED_CSV_COLUMNS]
        out = []
        for row in reader:
            parsed = keyed_event("b", tuple(row[i] for i in order), False)
            assert not isinstance(parsed, str), parsed
            out.append(parsed[0])
    return out


class Record:
    __slots__ = ("key", "offset", "partition", "topic", "value")

    def __init__(self, event: dict[str, Any], offset: int) -> None:
        self.value, self.key = orjson.dumps(event), event["customer_id"].encode()
        self.offset, self.partition, self.topic = offset, 0, "keyed"


def run_backend(name: str, url: str | None, tmp: Path, events: list[dict[str, Any]],
                args: argparse.Namespace) -> dict[str, Any]:
    from scorer.keyed import KeyedPipeline
    from store.db import connect
    from tests.keyed_desk_fixtures import keyed_model  # a one-unit dense keyed model

    engine = connect(fresh_db(url, tmp / name))
    model = keyed_model(engine, tmp / f"home-{name}", tmp / f"staging-{name}")
    pipeline = KeyedPipeline(model=model, engine=engine, group_id="bench", topic="keyed",
                             alerts_topic="keyed.alerts", partitions=lambda: [0])
    records = [Record(e, i) for i, e in enumerate(events)]
    position = 0

    def batch(size: int) -> float:
        nonlocal position
        chunk, position = records[position:position + size], position + size
        started = time.perf_counter()
        effects = pipeline.process(chunk)
        with engine.begin() as conn:
            effects.write(conn)
        return time.perf_counter() - started

    while position < WARMUP:
        batch(500)
    times: dict[int, list[float]] = {size: [] for size in args.sizes}
    for _ in range(args.rounds):
        for size in args.sizes:
            times[size].append(batch(size))
    medians = {size: statistics.median(t) for size, t in times.items()}
    slope, fixed = np.polyfit(list(medians), list(medians.values()), 1)
    for size, seconds in medians.items():
        print(f"{name}: batch of {size:>5,}: {seconds * 1e3:8.1f} ms "
              f"({seconds / size * 1e6:,.0f} µs/event)", flush=True)
    print(f"{name}: fixed cost of a batch ~{fixed * 1e3:.1f} ms, each event ~{slope * 1e6:.0f} µs",
          flush=True)
    engine.dispose()
    return {"db": name, "median_ms": {str(k): round(v * 1e3, 2) for k, v in medians.items()},
            "fixed_ms": round(float(fixed) * 1e3, 2),
            "per_event_us": round(float(slope) * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    add_db_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-keyed-batch-") as name:
        tmp = Path(name)
        events = keyed_events(tmp / "keyed.csv")
        need = WARMUP + 500 + args.rounds * sum(args.sizes)
        if len(events) < need:
            raise SystemExit(f"{len(events)} simulated events, {need} needed: fewer rounds")
        results = [run_backend(b, url, tmp, events, args) for b, url in backends(args)]
    print(orjson.dumps({"bench": "keyed_batch", "results": results}).decode())


if __name__ == "__main__":
    main()
