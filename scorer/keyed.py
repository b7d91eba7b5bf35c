"""Keyed scoring (``transaction.v2`` events, a model with behaviour features), on the one
consumer skeleton: decode → plan (lateness, readiness) → read state → features → score →
effects (decisions, alerts with their feature vectors, state, clocks: one SQL commit with the
offsets).

State (see README "Keyed scoring"): a card's windows live in ``card_state``, written for the
cards a batch touches in the batch's transaction; the member that owns a partition owns its
cards (events are keyed by customer id), and a restart or a moved partition reads the state as
committed with the offsets. The terminals' delayed windows are read from ``keyed_transactions``
(every member writes its scored transactions there) and ``labels``, only once every partition
has committed everything up to the window's end (``stream_clocks``); an event whose window is
not closed yet waits (its partition is deferred and re-read), so what it sees is what the
offline implementation sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from schemas.behaviour import BehaviourSpec
from schemas.times import DEFAULT_MAX_FUTURE_SKEW_S, Horizon
from scorer.decode import DecodedBatch
from scorer.keyed_decode import keyed_decoder
from scorer.keyed_features import (
    CardWindow,
    PartitionClock,
    Retention,
    batch_inputs,
    ready_before,
    retention_for,
    retention_us,
    terminal_span_us,
    updated_cards,
    with_older,
)
from scorer.keyed_store import (
    load_cards,
    load_clocks,
    load_facts,
    load_older,
    load_retention,
    write_state,
)
from scorer.process import ScoredBatch, ScoreEffects, ScoringModel, score_batch, shadow_decisions
from scorer.reload import ModelReloader, ProductionFence
from scorer.sink import write_batch
from store.cases import attach_to_cases
from store.columns import Columns
from stream import Outgoing
from stream.deadletters import DeadLetter

log = logging.getLogger(__name__)
#: Default allowed lateness: an event this much earlier than its partition's clock is scored
#: as of its own time; anything earlier is a dead letter.
LATENESS_US = 3_600 * 1_000_000
_NO_CLOCK = -(1 << 62)


@dataclass
class Plan:
    """What a batch does before any state is read: the events to score now (partition order),
    the dead letters, the partitions deferred (first offset not processed) and the clocks."""

    events: list[dict[str, Any]] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    deferred: dict[tuple[str, int], int] = field(default_factory=dict)
    clocks: dict[int, PartitionClock] = field(default_factory=dict)


def plan_batch(specs: Sequence[BehaviourSpec], records: Sequence[Any],
               decode: Callable[[Any], dict[str, Any] | str],
               clocks: Mapping[int, PartitionClock], partitions: Sequence[int],
               lateness_us: int, labels_until_us: int | None = None) -> Plan:
    """Split a batch (pure): bad events (``decode``: a record's fields or the reason it is
    bad) and events later than the allowed lateness behind their partition's clock are dead
    letters; an event whose terminal windows (for any model of ``specs``: production's, a
    shadow's) are not closed yet stops its partition there (deferred: its later records are
    not even decoded); the rest is scored."""
    plan = Plan()
    clock = {p: c.clock_us for p, c in clocks.items()}
    waiting: dict[int, int] = {}
    touched: set[int] = set()
    limits: dict[int, int | None] = {}  # per partition: events before it are ready
    for record in records:
        p, tp = record.partition, (record.topic, record.partition)
        if tp in plan.deferred:
            continue
        touched.add(p)
        event = decode(record)
        if isinstance(event, str):
            plan.dead.append(DeadLetter(record, event))
            continue
        t, now = event["time_us"], clock.get(p, _NO_CLOCK)
        if t < now - lateness_us:
            plan.dead.append(DeadLetter(record, (
                f"event_time: {(now - t) / 3.6e9:.2f} h before its partition's clock, more "
                f"than the allowed lateness ({lateness_us / 3.6e9:g} h): out of order")))
            continue
        if p not in limits:
            limits[p] = ready_before(specs, p, clocks, partitions, labels_until_us)
        if (limit := limits[p]) is not None and t >= limit:
            plan.deferred[tp] = record.offset
            waiting[p] = t
            continue
        plan.events.append(event)
        plan.records.append(record)
        clock[p] = max(now, t)
    for p in touched:
        latest = clock.get(p, _NO_CLOCK)
        bound = max(latest, waiting.get(p, _NO_CLOCK)) - lateness_us
        if latest != _NO_CLOCK or p in waiting:
            plan.clocks[p] = PartitionClock(latest, bound)
    return plan


def feature_rows(spec: BehaviourSpec, events: Sequence[Mapping[str, Any]],
                 inputs: np.ndarray) -> dict[str, dict[str, float]]:
    names = spec.input_names()
    return {e["transaction_id"]: dict(zip(names, row, strict=True))
            for e, row in zip(events, inputs.tolist(), strict=True)}


def write_keyed(conn: Connection, scored: ScoredBatch, *, log_decisions: bool,
                fence: int | None, state: Callable[[Connection], None],
                shadow_rows: Columns | Sequence[dict[str, Any]] = ()) -> None:
    write_batch(conn, scored, log_decisions=log_decisions, fence=fence, shadow_rows=shadow_rows)
    attach_to_cases(conn, scored.alert_rows)  # the cards' cases (the desk's card queue)
    state(conn)


def cards_for(conn: Connection, group_id: str, events: Sequence[Mapping[str, Any]],
              retention: Retention) -> dict[str, CardWindow]:
    """The stored windows of the batch's cards; for events before ``retention`` is complete
    (a switch to longer card windows), with their older rows read back from the store."""
    cards = load_cards(conn, group_id, [e["customer_id"] for e in events])
    first = min((e["time_us"] for e in events), default=None)
    if first is None or first >= retention.complete_from_us:
        return cards
    before = {card: int(w.times[0]) for card, w in cards.items() if len(w.times)}
    return with_older(cards, load_older(conn, before, first - retention.retention_us))


@dataclass
class KeyedPipeline:
    """The scorer's pipeline for a keyed model. ``partitions``: the topic's partitions (from
    the consumer's metadata); ``lateness_us``: the allowed lateness."""

    model: ScoringModel
    engine: Engine
    group_id: str
    topic: str
    alerts_topic: str
    partitions: Callable[[], Sequence[int]]
    lateness_us: int = LATENESS_US
    log_decisions: bool = True
    log_features: bool = False  # the feature vector with every decision, not only alerts
    reloader: ModelReloader | None = None
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S  # events dated later: dead letters
    fence: ProductionFence | None = None  # the production group's per-batch version fence
    shadow: ScoringModel | None = None  # a keyed shadow: its own spec's features, decisions only
    #: With a label sink to wait for: up to which event time (µs, exclusive) every label is
    #: stored (:func:`scorer.keyed_store.label_mark`), read after the batch was fetched.
    label_mark: Callable[[], int] | None = None

    def before_batch(self) -> None:
        if self.fence is not None:
            self.model = self.fence.check(self.model)
        elif self.reloader is not None:
            self.model = self.reloader.check()

    def process(self, records: Sequence[Any]) -> ScoreEffects:
        spec: BehaviourSpec = self.model.contract.spec
        # A shadow that became production (hot reload) would only repeat production's rows.
        shadow = self.shadow if self.shadow is not None and \
            self.shadow.version != self.model.version else None
        specs = [spec] if shadow is None else [spec, shadow.contract.spec]
        horizon = Horizon.from_wall_clock(self.max_future_skew_s)
        mark = None if self.label_mark is None else self.label_mark()
        with self.engine.connect() as conn:  # the batch's reads: one connection, no I/O between
            clocks = load_clocks(conn, self.group_id, self.topic)
            plan = plan_batch(specs, records, keyed_decoder(horizon), clocks, self.partitions(),
                              self.lateness_us, mark)
            events = plan.events
            stored = load_retention(conn, self.group_id)
            retention = retention_for(
                stored, max(retention_us(s, self.lateness_us) for s in specs),
                max((c.clock_us for c in clocks.values()), default=None))
            cards = cards_for(conn, self.group_id, events, retention)
            facts, known = load_facts(
                conn, [e["terminal_id"] for e in events],
                *terminal_span_us(specs, np.array([e["time_us"] for e in events] or [0])),
                exclude={e["transaction_id"] for e in events})
        if plan.deferred:
            log.debug("deferred %s (clocks %s)", plan.deferred, plan.clocks)
        inputs = batch_inputs(spec, events, cards, facts, known)
        batch = DecodedBatch(events, plan.records)
        scored = score_batch(batch, self.model, raw=inputs)
        shadow_rows = Columns({})
        stats = {"scored": len(events), "flagged": len(scored.alerts),
                 "deferred": len(records) - len(events) - len(plan.dead)}
        if shadow is not None:
            shadow_inputs = batch_inputs(shadow.contract.spec, events, cards, facts, known)
            shadow_rows, shadow_flagged = shadow_decisions(batch, shadow, raw=shadow_inputs)
            stats |= {"shadow_scored": len(shadow_rows), "shadow_flagged": shadow_flagged}
            if self.log_features:  # the shadow's own vectors with its decisions
                shadow_vectors = feature_rows(shadow.contract.spec, events, shadow_inputs)
                shadow_rows["features"] = [shadow_vectors[transaction_id] for transaction_id
                                           in shadow_rows["transaction_id"]]
        # the vectors stored: every alert's, and every decision's only with --log-features
        kept = np.arange(len(events)) if self.log_features else np.flatnonzero(scored.flagged)
        vectors = feature_rows(spec, [events[i] for i in kept], inputs[kept])
        cards_of = {e["transaction_id"]: e["customer_id"] for e in events}
        for row in scored.alert_rows:  # the whole vector the model saw, not only the top five
            row["feature_values"] = vectors[row["transaction_id"]]
            row["card_id"] = cards_of[row["transaction_id"]]
        if self.log_features:
            scored.decision_rows["features"] = [vectors[transaction_id] for transaction_id
                                                in scored.decision_rows["transaction_id"]]
        state = partial(write_state, group_id=self.group_id, topic=self.topic,
                        cards=updated_cards(events, cards, retention.retention_us),
                        retention=None if retention == stored else retention,
                        facts=[{"transaction_id": e["transaction_id"],
                                "terminal_id": e["terminal_id"], "time_us": e["time_us"],
                                "customer_id": e["customer_id"], "amount": e["amount"]}
                               for e in events],
                        clocks=plan.clocks)
        alerts = [Outgoing(self.alerts_topic, a.transaction_id.encode(),
                           a.model_dump_json().encode()) for a in scored.alerts]
        return ScoreEffects(
            publish=alerts, dead=plan.dead, deferred=plan.deferred,
            write=partial(write_keyed, scored=scored, log_decisions=self.log_decisions,
                          fence=self.model.version if self.fence is not None else None,
                          state=state, shadow_rows=shadow_rows),
            stats=stats, scores=scored.scores)
