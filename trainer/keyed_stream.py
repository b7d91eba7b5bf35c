"""Retraining from the stream on keyed data: the ``transaction.v2`` events read back from the
transactions topic, decoded as the keyed scorer decodes them (:func:`scorer.keyed_decoder`),
windowed by event time and by maturity as the ULB path is (:mod:`trainer.retrain`), labelled from
the label store (the latest label wins; unlabelled mature events are genuine), and each fraud
known from its first fraud label's ``observed_at`` (:func:`scorer.fraud_known`, the rule the
keyed scorer applies) — so the behaviour features the round trains on, computed by the one
implementation (:mod:`schemas.behaviour`) over what the stream saw, are those the stream
computed for the same events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import orjson

from schemas.behaviour import NEVER
from schemas.errors import FraudstreamError
from schemas.events import dataset_seconds, event_time
from schemas.times import Horizon, as_utc
from trainer import oot
from trainer.keyed_data import KeyedDataset


def holds_keyed(records: Sequence[Any]) -> bool:
    """True when most of ``records`` are keyed (``schema_version`` 2) events: a retraining
    round on them trains keyed models; the others are counted as dead letters."""
    keyed = 0
    for record in records:
        try:
            value = orjson.loads(record.value)
        except (orjson.JSONDecodeError, TypeError):
            continue
        keyed += isinstance(value, dict) and value.get("schema_version") == 2
    return keyed * 2 > len(records)


def keyed_stream_data(engine: Any, opts: Any, records: Sequence[Any]
                      ) -> tuple[KeyedDataset, dict[str, Any]]:
    """The keyed dataset of ``records`` (read back from ``opts.topic``) and its provenance
    (window, clock, maturity, labels, dead letters, synthetic header). ``opts``: the round's
    :class:`trainer.retrain.RetrainOptions`."""
    from schemas.provenance import synthetic_share
    from scorer import fraud_known, keyed_decoder
    from store.counts import maturity_cutoff, stream_clock
    from store.truth import truth_of
    from trainer.retrain import _bounds, _window_dict

    decode = keyed_decoder(Horizon.from_wall_clock())
    events, kept, seen, dead = [], [], set(), 0
    # per partition in offset order, so that a card's events keep their order at equal times
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode(record)
        if isinstance(event, str):
            dead += 1
        elif event["transaction_id"] not in seen:  # a re-sent event counts once
            seen.add(event["transaction_id"])
            events.append(event)
            kept.append(record)
    if not events:
        raise FraudstreamError(f"topic '{opts.topic}' holds no valid keyed transaction event "
                               f"({len(records)} records, {dead} malformed)")
    order = np.argsort(np.array([e["time_us"] for e in events], dtype=np.int64), kind="stable")
    events = [events[i] for i in order]
    time_s = np.array([e["time_s"] for e in events], dtype=np.float64)
    since_s, until_s = _bounds(time_s, opts)
    clock = stream_clock(engine)
    as_of = as_utc(clock) if clock is not None else event_time(float(time_s.max()))
    cutoff = maturity_cutoff(as_of, timedelta(seconds=opts.mature_after_s))
    window = oot.window_mask(time_s, since_s, until_s)
    keep = window & (time_s <= dataset_seconds(cutoff))  # younger: labels may still come
    if not keep.any():
        raise FraudstreamError(f"no mature keyed event of '{opts.topic}' falls in the window "
                               f"(mature: event time <= {cutoff.isoformat()})")
    chosen = [e for e, k in zip(events, keep, strict=True) if k]
    ids = np.array([e["transaction_id"] for e in chosen], dtype=object)
    truth, known = truth_of(engine, ids), fraud_known(engine, ids)
    y = np.array([truth.get(t, 0) for t in ids], dtype=np.int8)
    labelled = sum(t in truth for t in ids)
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    dataset = KeyedDataset(
        transaction_id=ids, time_us=np.array([e["time_us"] for e in chosen], dtype=np.int64),
        customer_id=np.array([e["customer_id"] for e in chosen], dtype=object),
        terminal_id=np.array([e["terminal_id"] for e in chosen], dtype=object),
        amount=np.array([e["amount"] for e in chosen], dtype=np.float64), y=y, scenario=None,
        sha256=digest, source=f"stream:{opts.topic}",
        known_us=np.array([known.get(t, NEVER) for t in ids], dtype=np.int64))
    synthetic, marked = synthetic_share(kept)
    return dataset, {
        "source": "stream", "topic": opts.topic, "synthetic": synthetic,
        "synthetic_events": marked, "records_read": len(records), "dead_lettered": dead,
        "as_of": as_of.isoformat(), "mature_after_s": opts.mature_after_s,
        "mature_until": cutoff.isoformat(),
        "labels": {"fraud": int(y.sum()), "genuine": int(labelled - y.sum()),
                   "matured": int(len(ids) - labelled),
                   "left_out": int((window & ~keep).sum())},
        **_window_dict(since_s, until_s, time_s[keep])}
