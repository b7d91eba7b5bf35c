"""Decoding a micro-batch of Kafka records into valid transactions and dead letters (pure).

No broker is needed: a record is anything with ``topic``, ``partition``, ``offset``, ``key`` and
``value`` (bytes or None), such as kafka-python's ``ConsumerRecord``.

The pydantic model :class:`schemas.events.TransactionV1` is the authority. Because validating
every event with it costs ~16 µs, events are first tried on a fast path (orjson, exact type
checks, one vectorised finiteness/sign check per batch) that accepts only a strict subset of
what the model accepts; anything else — malformed or merely unusual — goes to the model, which
either accepts it or gives the dead-letter reason. Both then face the :class:`Horizon`: an event
later than the wall clock plus the allowed future skew is a dead letter with that reason (decided
here, so it never reaches scoring or the store, and never costs a batch bisection).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from schemas.events import ID_PATTERN, MAX_ID_LENGTH, TransactionV1
from schemas.features import EVENT_NUMBERS, raw_matrix_from_events
from schemas.keyed import INPUT_V1, wrong_input_reason
from schemas.times import MAX_TIME_S, Horizon, event_time
from schemas.validation import json_object, validate_event
from stream.deadletters import DeadLetter

_numeric = itemgetter(*EVENT_NUMBERS)  # time_s, v1..v28, amount
_NUMBER_TYPES = {float, int}
_plain_id = re.compile(ID_PATTERN).fullmatch  # "$" alone matches before a final "\n"


@dataclass
class DecodedBatch:
    events: list[dict[str, Any]] = field(default_factory=list)  # validated transaction fields
    records: list[Any] = field(default_factory=list)  # the record of each event, same order
    dead: list[DeadLetter] = field(default_factory=list)
    #: ``(n, 30)`` float64 numeric fields (``EVENT_NUMBERS`` order) of the events, when decoding
    #: already built them (every event took the fast path); None: built from ``events``.
    numbers: np.ndarray | None = field(default=None, repr=False, compare=False)
    _raw: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def _numbers(self) -> np.ndarray | None:
        """:attr:`numbers` if it still describes :attr:`events` (none added since)."""
        numbers = self.numbers
        return numbers if numbers is not None and len(numbers) == len(self.events) else None

    def raw_matrix(self) -> np.ndarray:
        """``(n, 29)`` raw features of the valid events (feature-contract order); built once per
        batch (production and a shadow model share it) and again only if events were added."""
        if self._raw is None or len(self._raw) != len(self.events):
            numbers = self._numbers()
            self._raw = (raw_matrix_from_events(self.events) if numbers is None
                         else np.ascontiguousarray(numbers[:, 1:]))
            self._raw.flags.writeable = False  # shared: nobody may change it in place
        return self._raw

    def labels(self) -> np.ndarray:
        """``(n,)`` int8: 0/1 where the event carries ``is_fraud``, -1 where it does not."""
        return np.array([-1 if (label := e.get("is_fraud")) is None else label
                         for e in self.events], dtype=np.int8)

    def column(self, name: str) -> np.ndarray:
        """``(n,)`` float64 values of one numeric field (e.g. ``time_s``, ``amount``)."""
        numbers = self._numbers()
        if numbers is not None and name in EVENT_NUMBERS:
            return numbers[:, EVENT_NUMBERS.index(name)].copy()
        return np.array([e[name] for e in self.events], dtype=np.float64)


def decode_one(value: bytes | None) -> dict[str, Any] | str:
    """The event's fields per the model, or the reason it is not a valid transaction event v1."""
    result = validate_event(TransactionV1, value)
    if isinstance(result, str):  # a keyed event names why this model cannot use it
        return wrong_input_reason(value, INPUT_V1) or result
    return result.model_dump()


def _plainly_valid(value: bytes | None) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """The parsed event and its numeric fields (``EVENT_NUMBERS`` order) if its types are
    exactly right (values are checked per batch)."""
    event = json_object(value)
    if event is None:
        return None
    try:
        version, tid, label = event["schema_version"], event["transaction_id"], event.get(
            "is_fraud")
        numbers = _numeric(event)
    except KeyError:
        return None
    if (type(version) is int and version == 1 and type(tid) is str and 0 < len(tid) <= MAX_ID_LENGTH
            and _plain_id(tid) and (label is None or (type(label) is int and label in (0, 1)))
            and _NUMBER_TYPES.issuperset(map(type, numbers))):
        return event, numbers
    return None


def fast_path(values: Sequence[bytes | None]) -> list[dict[str, Any] | None]:
    """The fast path alone: each value's event if the fast path accepts it, else None (left to
    the model). It must accept exactly what the model accepts, with the same field values
    (a property test, ``tests/test_fast_path.py``, holds it to that both ways)."""
    return _fast_path(values)[0]


def _fast_path(values: Sequence[bytes | None]
               ) -> tuple[list[dict[str, Any] | None], np.ndarray, dict[int, int]]:
    """:func:`fast_path`; the ``(k, 30)`` numeric fields of the values it parsed, and for each
    accepted value's position its row there."""
    parsed = [_plainly_valid(value) for value in values]
    index = [i for i, p in enumerate(parsed) if p is not None]
    numbers = np.array([p[1] for p in parsed if p is not None], dtype=np.float64).reshape(
        len(index), len(EVENT_NUMBERS))
    fast = [None if p is None else p[0] for p in parsed]
    if index:
        time_s = numbers[:, 0]
        bad = (~np.isfinite(numbers).all(axis=1) | (time_s < 0) | (time_s >= MAX_TIME_S)
               | (numbers[:, -1] < 0))
        for j in np.flatnonzero(bad):
            fast[index[j]] = None  # out of range: let the model give the reason
    return fast, numbers, {i: j for j, i in enumerate(index) if fast[i] is not None}


def decode_batch(records: Sequence[Any], horizon: Horizon | None = None) -> DecodedBatch:
    """Split ``records`` into valid events (in order) and dead letters. With a ``horizon``,
    an event later than its :attr:`~Horizon.latest` is a dead letter too, with that reason."""
    fast, numbers, row_of = _fast_path([r.value for r in records])
    latest_s = horizon.latest_time_s if horizon is not None else float("inf")
    if len(row_of) == len(records) and not (len(numbers) and numbers[:, 0].max() > latest_s):
        # The usual batch: every event took the fast path and none is beyond the horizon, so
        # the loop below would keep them all, in order, with ``numbers`` as they are. (An
        # accepted time_s is finite and below MAX_TIME_S, so its float64 is the value itself.)
        return DecodedBatch(events=fast, records=list(records),  # type: ignore[arg-type]
                            numbers=numbers)
    batch = DecodedBatch()
    rows: list[int] = []  # the row in ``numbers`` of each valid event that took the fast path
    for position, (record, event) in enumerate(zip(records, fast, strict=True)):
        result = event if event is not None else decode_one(record.value)
        if not isinstance(result, str) and result["time_s"] > latest_s and horizon is not None:
            result = horizon.refusal("time_s", event_time(result["time_s"]))
        if isinstance(result, str):
            batch.dead.append(DeadLetter(record, result))
        else:
            batch.events.append(result)
            batch.records.append(record)
            if event is not None:
                rows.append(row_of[position])
    if len(rows) == len(batch.events):  # every valid event parsed once: keep its numbers
        batch.numbers = numbers[rows] if len(rows) != len(numbers) else numbers
    return batch
