"""Keyed demo data for the desk tests, written through the real write path: a registered keyed
model (its training record holds the behaviour spec) scores transaction.v2 records through
:class:`scorer.keyed.KeyedPipeline` — features, decisions, alerts with their vectors, card state,
keyed transactions — committed as the scorer commits a batch. No broker: the records are built
here as the consumer would hand them over.

The data: cards ``c1``..``c4`` buy once a day at their own terminal from 2018-04-01 for
:data:`DAYS` days; ``c1`` bursts (6 purchases at terminal ``T9``) on :data:`BURST_DAY`, ``c2``
(5 at ``T8``) two days later. The model (one linear unit) flags a card's 4th+ purchase within
24 h, so each burst has unflagged and flagged transactions. A purchase at ``T9`` eleven days
before the burst is a fraud known 4 days later: ``c1``'s alerts see terminal risk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Engine

from models.dense import DenseScorer
from schemas.behaviour import BehaviourContract, BehaviourSpec
from scorer.keyed import KeyedPipeline
from scorer.process import ScoringModel
from store import registry
from store.bulk import insert_ignore
from store.tables import labels

START = datetime(2018, 4, 1, 9, 0, tzinfo=UTC)
DAYS = 26
BURST_DAY = 20  # c1's burst; c2's two days later
SPEC = BehaviourSpec()


@dataclass(frozen=True)
class Record:
    """A consumed record as the consumer skeleton hands it to a pipeline."""

    value: bytes
    key: bytes
    offset: int
    topic: str = "keyed"
    partition: int = 0


@dataclass(frozen=True)
class KeyedSeed:
    version: int
    alerts: list[str]  # alerted transaction ids, in time order
    burst: dict[str, list[str]]  # card → its burst's transaction ids, in time order
    tx_card: dict[str, str]


def _event(tid: str, when: datetime, card: str, terminal: str, amount: float) -> dict[str, Any]:
    return {"schema_version": 2, "transaction_id": tid, "event_time": when.isoformat(),
            "amount": amount, "customer_id": card, "terminal_id": terminal}


def _events() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    events, burst = [], {"c1": [], "c2": []}
    for day in range(DAYS):
        for j, card in enumerate(("c1", "c2", "c3", "c4")):
            when = START + timedelta(days=day, minutes=10 * j)
            terminal = "T9" if (card, day) == ("c3", BURST_DAY - 11) else f"T{j}"
            events.append(_event(f"{card}-d{day:02d}", when, card, terminal, 20.0 + j))
    for card, terminal, day, n in (("c1", "T9", BURST_DAY, 6), ("c2", "T8", BURST_DAY + 2, 5)):
        for i in range(n):
            when = START + timedelta(days=day, hours=2, minutes=7 * i)
            tid = f"{card}-burst-{i}"
            events.append(_event(tid, when, card, terminal, 180.0 + 10 * i))
            burst[card].append(tid)
    events.sort(key=lambda e: e["event_time"])
    return events, burst


def keyed_model(engine: Engine, home: Path, staging: Path) -> ScoringModel:
    """Register a keyed model (training record with the spec) and its scoring form: logit =
    1.5 × the card's 24 h count + 3 × the terminal's 7-day known-fraud share − 5."""
    staging.mkdir(parents=True, exist_ok=True)
    contract = BehaviourContract(SPEC, mean=(0.0,) * 15, scale=(1.0,) * 15)
    contract.save(staging / BehaviourContract.FILE)
    record = registry.register(
        engine, staging, strategy="weighted", threshold=0.5, threshold_policy="max-f1",
        metrics={}, data_sha256="0" * 64, home=home,
        training={"source": "test", "input": "transaction.v2",
                  "behaviour_spec": SPEC.to_dict(), "behaviour_spec_sha256": SPEC.sha256()},
        manifest_extra={"input": "transaction.v2", "behaviour_spec_sha256": SPEC.sha256()})
    names = SPEC.input_names()
    kernel = np.zeros((len(names), 1))
    kernel[names.index("customer_count_1d"), 0] = 1.5
    kernel[names.index("terminal_risk_7d"), 0] = 3.0
    net = DenseScorer(kernels=(kernel,), biases=(np.array([-5.0]),))
    return ScoringModel(version=record.version, threshold=0.5, contract=contract, net=net,
                        input="transaction.v2")


def seed_keyed(engine: Engine, home: Path, staging: Path) -> KeyedSeed:
    """Score the demo events through the keyed pipeline, with the early fraud label at ``T9``
    stored (as the label sink would) before the transactions that see it."""
    model = keyed_model(engine, home, staging)
    pipeline = KeyedPipeline(model=model, engine=engine, group_id="keyed", topic="keyed",
                             alerts_topic="keyed.alerts", partitions=lambda: [0])
    events, burst = _events()
    fraud_tid = f"c3-d{BURST_DAY - 11:02d}"
    cut = next(i for i, e in enumerate(events)
               if e["event_time"] >= (START + timedelta(days=BURST_DAY - 7)).isoformat())
    alerted: list[str] = []
    for lo, hi in ((0, cut), (cut, len(events))):
        records = [Record(orjson.dumps(e), e["customer_id"].encode(), i)
                   for i, e in enumerate(events[lo:hi], start=lo)]
        for i in range(0, len(records), 40):  # batches as the consumer would hand them over
            effects = pipeline.process(records[i:i + 40])
            assert not effects.dead and not effects.deferred, effects.dead
            with engine.begin() as conn:
                effects.write(conn)
            alerted += [json.loads(o.value)["transaction_id"] for o in effects.publish]
        if lo == 0:
            known = START + timedelta(days=BURST_DAY - 7)
            add_label(engine, fraud_tid, 1, "replay", known)
    return KeyedSeed(model.version, alerted, burst,
                     {e["transaction_id"]: e["customer_id"] for e in events})


def add_label(engine: Engine, tid: str, is_fraud: int, source: str, at: datetime) -> None:
    """A label as the label sink stores it."""
    with engine.begin() as conn:
        insert_ignore(conn, labels, [{"label_id": f"{source}:{tid}", "transaction_id": tid,
                                      "is_fraud": is_fraud, "source": source, "observed_at": at,
                                      "received_at": datetime.now(UTC)}])
