"""End-to-end scorer throughput (Kafka → score → SQL commit) against two references measured in
the same run:

  (a) a bare kafka-python consumer draining the same topic (no decoding, no scoring, no DB);
  (b) the per-message baseline: decode one event, ``model.predict`` one row, insert its one
      ``decisions`` row, commit — on a few hundred events (written under ``baseline:<id>`` so
      they do not collide with the scorer's rows).

    .venv/bin/python bench/bench_scorer.py [--rows 284807] [--csv PATH] [--profile]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` or starts a local broker in a temporary directory; SQLite in a
temporary FRAUDSTREAM_HOME (``--db URL`` for PostgreSQL). The model is trained for a few epochs
on the same data (quality does not matter here, only the work per event).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import bare_consumer_rate, bench_broker, maybe_profile


def per_message_rate(bootstrap: str, topic: str, engine: Any, home: Path, n: int) -> float:
    """Events/s of the naive loop: one decode, one ``model.predict``, one insert+commit each."""
    from datetime import UTC, datetime

    import numpy as np
    from kafka import KafkaConsumer

    from schemas.events import TransactionV1, event_time
    from schemas.features import FeatureContract, raw_matrix_from_events
    from store import registry
    from store.tables import decisions
    from trainer.model import load_keras

    keras = load_keras()
    record = registry.get(engine)
    directory = registry.verify(record, home)
    model = keras.saving.load_model(directory / "model.keras", compile=False)
    contract = FeatureContract.load(directory / "feature_contract.json")
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    messages = []
    for message in consumer:
        messages.append(message)
        if len(messages) == n:
            break
    consumer.close()
    start = time.monotonic()
    for message in messages:
        event = TransactionV1.model_validate_json(message.value)
        x = contract.transform(raw_matrix_from_events([event.model_dump()]))
        score = float(np.asarray(model.predict(x, verbose=0)).reshape(-1)[0])
        with engine.begin() as conn:
            conn.execute(decisions.insert().values(
                transaction_id=f"baseline:{event.transaction_id}", model_version=record.version,
                score=score, threshold=record.threshold, flagged=score >= record.threshold,
                amount=event.amount, event_time=event_time(event.time_s),
                source_topic=message.topic, source_partition=message.partition,
                source_offset=message.offset, scored_at=datetime.now(UTC)))
    return n / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=284_807)
    parser.add_argument("--csv", help="use this CSV instead of synthetic rows")
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--baseline-events", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the scorer run")
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from producer.replay import replay
    from producer.topics import ensure_topics
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.db import connect
    from stream import freeze_start_up
    from trainer.pipeline import train
    from trainer.synth import write_csv

    with tempfile.TemporaryDirectory(prefix="bench-scorer-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["FRAUDSTREAM_HOME"] = str(home)
        db = args.db or f"sqlite:///{home / 'bench.db'}"
        csv = args.csv or str(write_csv(Path(tmp) / "creditcard.csv", args.rows, seed=7))
        train(csv, epochs=3, seed=1, db=db, home=home)
        engine = connect(db)
        run = uuid.uuid4().hex[:8]
        topic = f"bench-tx-{run}"
        ensure_topics(bootstrap, {topic: 3, f"{topic}.alerts": 3, f"{topic}.dlq": 1})
        sent = replay(csv, bootstrap=bootstrap, topic=topic).sent

        # Both sides run with what is loaded so far (TensorFlow too, here only to train; the
        # scorer process never loads it) out of the garbage collector's scans, as the consumer
        # has it after its own start-up: a full collection would otherwise cost either ~0.5 s.
        freeze_start_up()
        bare, bare_s, bare_cpu = bare_consumer_rate(bootstrap, topic, sent)
        config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id=f"bench-{run}",
                             batch_size=args.batch_size, until_idle=3,
                             alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq")
        scorer = Scorer(config, engine, load_model(engine, home=home))
        with maybe_profile(args.profile):
            summary = scorer.run()
        naive = per_message_rate(bootstrap, topic, engine, home, args.baseline_events)
    assert summary.consumed == sent, (summary.consumed, sent)
    # per CPU second of the process (the scorer's busy window, the drain's first to last
    # record): what each costs, less swayed than events/s by what else the machine runs
    bare_per_cpu = sent / bare_cpu if bare_cpu else 0.0
    scorer_per_cpu = sent / summary.busy_cpu_seconds if summary.busy_cpu_seconds else 0.0
    result = {
        "events": sent,
        "bare_consumer_eps": round(bare),
        "bare_consumer_seconds": round(bare_s, 2),
        "scorer_eps": round(summary.rate),
        "scorer_seconds": round(summary.busy_seconds, 2),
        "per_message_eps": round(naive, 1),
        "scorer_vs_bare": round(summary.rate / bare, 3),
        "bare_consumer_eps_per_cpu_s": round(bare_per_cpu),
        "scorer_eps_per_cpu_s": round(scorer_per_cpu),
        "scorer_vs_bare_per_cpu_s": round(scorer_per_cpu / bare_per_cpu, 3) if bare_per_cpu
        else None,
        "scorer_vs_per_message": round(summary.rate / naive, 1),
        "flagged": summary.flagged,
        "batch_size": args.batch_size,
    }
    print(f"events                       {sent:>10,}")
    print(f"(a) bare kafka-python drain  {bare:>10,.0f} events/s  ({bare_s:.2f} s)")
    print(f"    fraudstream scorer       {summary.rate:>10,.0f} events/s  "
          f"({summary.busy_seconds:.2f} s, Kafka -> score -> SQL commit)")
    print(f"(b) per-message baseline     {naive:>10,.1f} events/s  "
          f"(decode, predict 1 row, insert 1 row; {args.baseline_events} events)")
    print(f"scorer / bare consumer       {summary.rate / bare:>10.3f}")
    if bare_per_cpu and scorer_per_cpu:
        print(f"  per CPU second             {scorer_per_cpu / bare_per_cpu:>10.3f}  "
              f"({scorer_per_cpu:,.0f} vs {bare_per_cpu:,.0f} events per CPU second)")
    print(f"scorer / per-message         {summary.rate / naive:>10.1f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
