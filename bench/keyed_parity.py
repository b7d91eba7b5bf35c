"""Keyed scoring parity at scale: a simulated keyed replay of >= 100,000 events with labels
delayed 7 days, the label sink run to the end, then one keyed scorer (``--log-features``); every
decision's feature vector is compared with the offline implementation's (labels as observed)
and every score with an offline scoring of it (``scorer.keyed_check.recheck``). The CI test
(``tests/test_keyed_stream.py``) runs the same check on a few thousand events.

Uses ``KAFKA_BOOTSTRAP_SERVERS`` or starts a local broker; SQLite in a temp dir unless ``--db``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from common import bench_broker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--terminals", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)

    from fraudstream_cli import main as cli
    from labels.service import consume_labels
    from producer.replay import replay
    from producer.topics import ensure_topics
    from scorer.keyed_check import recheck
    from scorer.model import load_model
    from scorer.service import ScoreConfig, Scorer
    from store.db import connect
    from stream import ConsumerConfig
    from trainer.keyed_synth import SimulationParams, write_keyed_csv

    with tempfile.TemporaryDirectory(prefix="bench-keyed-") as tmp, \
            bench_broker(Path(tmp)) as bootstrap:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["FRAUDSTREAM_HOME"] = str(home)
        db = args.db or f"sqlite:///{home / 'bench.db'}"
        csv = Path(tmp) / "sim.csv"
        write_keyed_csv(csv, SimulationParams(customers=args.customers,
                                              terminals=args.terminals, days=args.days, seed=1))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli(["train", "--csv", str(csv), "--family", "xgboost", "--db", db,
                        "--json"]) == 0
        version = int(json.loads(out.getvalue())["version"])
        engine = connect(db)
        run = uuid.uuid4().hex[:8]
        topic, labels_topic = f"bench-keyed-{run}", f"bench-keyed-labels-{run}"
        ensure_topics(bootstrap, {topic: 3, labels_topic: 1, f"{topic}.alerts": 1,
                                  f"{topic}.dlq": 1, f"{labels_topic}.dlq": 1})
        sent = replay(str(csv), bootstrap=bootstrap, topic=topic, labels="delayed:7d",
                      labels_topic=labels_topic)
        consume_labels(ConsumerConfig(bootstrap=bootstrap, topic=labels_topic,
                                      group_id=f"labels-{run}", dlq_topic=f"{labels_topic}.dlq",
                                      until_idle=3), engine)
        config = ScoreConfig(bootstrap=bootstrap, topic=topic, group_id=f"keyed-{run}",
                             batch_size=args.batch_size, until_idle=5, log_features=True,
                             alerts_topic=f"{topic}.alerts", dlq_topic=f"{topic}.dlq")
        started = time.monotonic()
        summary = Scorer(config, engine, load_model(engine, version, keyed=True)).run()
        scoring_s = time.monotonic() - started
        check = recheck(engine, csv, version)
    result = {"events": sent.sent, "labels": sent.labels_sent, "scored": summary.scored,
              "dlq": summary.dlq, "scorer_eps_busy": round(summary.rate),
              "scoring_seconds": round(scoring_s, 1), **asdict(check)}
    print(json.dumps(result, indent=2))
    assert check.decided == check.with_features == check.transactions == sent.sent
    assert check.max_feature_diff <= 1e-9 and check.scores_equal and check.alerts_match


if __name__ == "__main__":
    main()
