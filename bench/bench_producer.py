"""Producer throughput: ``fraudstream replay`` vs raw kafka-python sends of pre-encoded events.

    .venv/bin/python bench/bench_producer.py [--rows 284807] [--profile]

Generates ``rows`` synthetic transactions (trainer.synth) into a temporary CSV, replays them
with :func:`producer.replay.replay` to a fresh topic, then sends the same number of
pre-encoded payloads with a bare ``KafkaProducer`` (same settings) to another fresh topic, and
prints events/s for both and their ratio. Uses ``KAFKA_BOOTSTRAP_SERVERS`` or starts a
:class:`producer.broker.LocalBroker` on a free port in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from pathlib import Path

from common import bench_broker, maybe_profile


def raw_send_rate(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]]) -> float:
    """Events/s of sending ``payloads`` (key, value) with the replay's producer settings."""
    from kafka import KafkaProducer

    from producer.replay import _PRODUCER_CONFIG

    producer = KafkaProducer(bootstrap_servers=bootstrap, **_PRODUCER_CONFIG)
    start = time.monotonic()
    futures = [producer.send(topic, key=key, value=value) for key, value in payloads]
    producer.flush()
    seconds = time.monotonic() - start
    producer.close()
    failed = sum(1 for f in futures if not f.succeeded())
    if failed:
        raise SystemExit(f"raw producer: {failed} sends failed")
    return len(payloads) / seconds


def encode_like_replay(csv_path: Path, tag: str) -> list[tuple[bytes, bytes]]:
    """The events the replay sends for ``csv_path``, pre-encoded (key, value) bytes."""
    import csv

    from producer.replay import transaction_id
    from producer.rows import event_template

    template = event_template(True, "s")
    out = []
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            tid = transaction_id(tag, reader.line_num)
            out.append((tid.encode(), (template % (tid, *row[:30], row[30] == "1")).encode()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=284_807)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the replay")
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    from producer.replay import replay, source_tag
    from producer.topics import ensure_topics
    from trainer.synth import write_csv

    with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        csv_path = write_csv(Path(tmp) / "creditcard.csv", args.rows, seed=7)
        run = uuid.uuid4().hex[:8]
        ours_topic, raw_topic = f"bench-replay-{run}", f"bench-raw-{run}"
        ensure_topics(bootstrap, {ours_topic: 3, raw_topic: 3})
        with maybe_profile(args.profile):
            summary = replay(str(csv_path), bootstrap=bootstrap, topic=ours_topic)
        if summary.failed or summary.sent != args.rows:
            raise SystemExit(f"replay incomplete: {summary}")
        payloads = encode_like_replay(csv_path, source_tag(str(csv_path)))
        raw = raw_send_rate(bootstrap, raw_topic, payloads)
    result = {"rows": args.rows, "replay_events_per_s": round(summary.rate),
              "raw_kafka_python_events_per_s": round(raw),
              "ratio": round(summary.rate / raw, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
