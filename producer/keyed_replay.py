"""Replaying a keyed CSV (:data:`schemas.keyed.KEYED_CSV_COLUMNS`) as ``transaction.v2`` events,
each keyed on Kafka by its customer (card) id, so that all of a card's transactions land on one
partition in file order (the scorer's per-card state is partitioned by it).

Transaction ids are the file's own ids prefixed with the source tag so that two files cannot
collide: ``schemas.ids.derived_id(source_tag, TRANSACTION_ID)`` (``sim:42``; the sha256 of the
file's id in place of it when the result would exceed 128 characters). ``TX_DATETIME`` is
ISO 8601, UTC when it has no zone. ``TX_FRAUD_SCENARIO`` is never sent. Pacing, ``--skip``,
``--limit`` and ``--labels`` behave as for the ULB layout (:mod:`producer.replay`); a delayed
label is due DURATION after the transaction's ``TX_DATETIME``.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from itertools import islice
from operator import itemgetter
from typing import Any

import orjson

from producer.delivery import Sender
from producer.labels import LabelMode, LabelSchedule
from schemas.events import ID_PATTERN, MAX_ID_LENGTH, dataset_seconds
from schemas.ids import derived_id
from schemas.keyed import KEYED_CSV_COLUMNS
from schemas.times import as_utc

MAX_INVALID_EXAMPLES = 10
_CHECK_EVERY = 2_000
_plain_id = re.compile(ID_PATTERN).fullmatch


Parsed = tuple[dict[str, Any], float, bool] | str


def keyed_event(tag: str, fields: tuple[str, ...], check_class: bool) -> Parsed:
    """(the ``transaction.v2`` event without its label, its time in dataset seconds, whether
    ``TX_FRAUD`` is 1) of one row's fields in :data:`KEYED_CSV_COLUMNS` order, or the reason
    the row is invalid (``TX_FRAUD`` is checked only with ``check_class``)."""
    source_id, stamp, customer, terminal, amount_text, fraud_text = (f.strip() for f in fields)
    for name, value in (("TRANSACTION_ID", source_id), ("CUSTOMER_ID", customer),
                        ("TERMINAL_ID", terminal)):
        if not value or len(value) > MAX_ID_LENGTH or not _plain_id(value):
            return f"{name}: not an id (1..{MAX_ID_LENGTH} printable characters): {value[:20]!r}"
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return f"TX_DATETIME: not an ISO 8601 time ({stamp[:30]!r})"
    when = as_utc(when)
    try:
        amount = float(amount_text)
    except ValueError:
        return f"TX_AMOUNT: not a number ({amount_text[:20]!r})"
    if not math.isfinite(amount) or amount < 0:
        return f"TX_AMOUNT: not a finite amount >= 0 ({amount_text[:20]!r})"
    event: dict[str, Any] = {"schema_version": 2,
                             "transaction_id": derived_id(tag, source_id),
                             "event_time": when.isoformat().replace("+00:00", "Z"),
                             "amount": amount, "customer_id": customer, "terminal_id": terminal}
    if check_class and fraud_text not in ("0", "1"):
        return f"TX_FRAUD: must be 0 or 1 ({fraud_text[:20]!r})"
    return event, dataset_seconds(when), fraud_text == "1"


def send_keyed_rows(reader: Any, header: list[str], sender: Sender, topic: str,
                    labels_topic: str, tag: str, *, rate: float | None, speedup: float | None,
                    limit: int | None, skip: int, mode: LabelMode,
                    progress: bool) -> dict[str, Any]:
    """The keyed replay's loop (same contract as :func:`producer.replay._send_rows`): validate,
    encode and send rows keyed by customer id, and delayed labels in due order."""
    from tqdm import tqdm

    ncols = len(header)
    get = itemgetter(*[header.index(c) for c in KEYED_CSV_COLUMNS])
    schedule = LabelSchedule(mode.delay_s, mode.delay_text) if mode.delayed else None
    bar = tqdm(unit="ev", disable=not progress, mininterval=0.5)
    invalid, examples = 0, []
    t0: float | None = None
    considered = attempted = 0
    start = time.monotonic()
    rows = islice(reader, skip, None if limit is None else skip + limit)
    for records, fields in enumerate(rows, start=skip + 1):  # records: data rows read so far
        considered += 1
        if len(fields) != ncols:
            parsed: Parsed = \
                "empty line" if not any(f.strip() for f in fields) else \
                f"expected {ncols} fields, got {len(fields)}"
        else:
            cols = get(fields)
            parsed = keyed_event(tag, cols, mode.needs_class)
        if isinstance(parsed, str):
            invalid += 1
            if len(examples) < MAX_INVALID_EXAMPLES:
                examples.append({"line": reader.line_num, "reason": parsed})
            continue
        event, event_s, fraud = parsed
        if mode.inline:
            event["is_fraud"] = int(fraud)
        if (rate is not None or speedup is not None) and not sender.stopped:
            if rate is not None:
                target = start + attempted / rate
            else:
                t0 = event_s if t0 is None else t0
                target = start + (event_s - t0) / speedup  # type: ignore[operator]
            if (delay := target - time.monotonic()) > 0:
                time.sleep(delay)
        if schedule is not None and event_s >= schedule.next_due:
            for label in schedule.pop_due(event_s):
                sender.send(labels_topic, label.key, label.value, label.row, True)
        attempted += 1
        sender.send(topic, event["customer_id"].encode(), orjson.dumps(event), records)
        if schedule is not None and fraud:
            schedule.add(event["transaction_id"], event_s, records)
        if attempted % _CHECK_EVERY == 0:
            sender.reap()
            bar.update(_CHECK_EVERY)
    if schedule is not None:
        for label in schedule.drain():
            sender.send(labels_topic, label.key, label.value, label.row, True)
    sender.finish()
    bar.update(attempted % _CHECK_EVERY)
    bar.close()
    return {"rows": considered, "invalid": invalid, "examples": examples,
            "seconds": time.monotonic() - start}
