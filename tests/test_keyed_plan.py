"""Which events of a batch are scored now (pure): :func:`scorer.keyed.plan_batch` against the
rule written out event by event — an event waits (its partition is deferred from it on) unless
every other partition's committed bound is later than the end of its terminal windows (its time
minus the shortest delay D of the models) and, with a label mark, it is earlier than the mark;
an event more than the allowed lateness behind its partition's clock is a dead letter; a bad
record is a dead letter. Records of a deferred partition after the first are never decoded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.behaviour import DAY_US, BehaviourSpec
from scorer.keyed import plan_batch
from scorer.keyed_features import PartitionClock

SPECS = [BehaviourSpec(delay_days=7), BehaviourSpec(delay_days=3, terminal_windows_days=(1,))]
LATENESS = 5 * 3_600 * 1_000_000


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    value: object


def ready_by_rule(t: int, p: int, clocks: dict, partitions: list, mark: int | None) -> bool:
    if mark is not None and t >= mark:
        return False
    end = t - min(s.delay_days for s in SPECS if s.terminal_windows_days) * DAY_US
    return all(q == p or (q in clocks and clocks[q].bound_us > end) for q in partitions)


def reference(records, clocks, partitions, mark):
    clock = {p: c.clock_us for p, c in clocks.items()}
    events, dead, deferred = [], [], {}
    for r in records:
        if (r.topic, r.partition) in deferred:
            continue
        if isinstance(r.value, str):
            dead.append(r.offset)
            continue
        t, now = r.value["time_us"], clock.get(r.partition, -(1 << 62))
        if t < now - LATENESS:
            dead.append(r.offset)
        elif not ready_by_rule(t, r.partition, clocks, partitions, mark):
            deferred[(r.topic, r.partition)] = r.offset
        else:
            events.append(r.offset)
            clock[r.partition] = max(now, t)
    return events, dead, deferred


def test_plan_batch_follows_the_rule_and_decodes_nothing_after_a_deferral():
    rng = np.random.default_rng(11)
    for _ in range(400):
        partitions = list(range(int(rng.integers(1, 4))))
        base = 100 * DAY_US
        clocks = {p: PartitionClock(base + int(rng.integers(-3, 3)) * DAY_US,
                                    base + int(rng.integers(-10, 3)) * DAY_US)
                  for p in partitions if rng.random() < 0.85}
        mark = None if rng.random() < 0.5 else base + int(rng.integers(-2, 12)) * DAY_US
        records, offsets = [], dict.fromkeys(partitions, 0)
        for _ in range(int(rng.integers(0, 25))):
            p = int(rng.choice(partitions))
            value = "bad JSON" if rng.random() < 0.1 else \
                {"time_us": base + int(rng.integers(-2 * 24, 14 * 24)) * 3_600_000_000}
            records.append(Rec("t", p, offsets[p], value))
            offsets[p] += 1
        decoded = []

        def decode(record, seen=decoded):
            seen.append((record.partition, record.offset))
            return record.value

        plan = plan_batch(SPECS, records, decode, clocks, partitions, LATENESS, mark)
        events, dead, deferred = reference(records, clocks, partitions, mark)
        assert [r.offset for r in plan.records] == events
        assert [d.record.offset for d in plan.dead] == dead
        assert plan.deferred == deferred
        assert all(o <= deferred.get(("t", p), o) for p, o in decoded)  # none after its wait
