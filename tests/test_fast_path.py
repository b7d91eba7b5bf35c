"""The scorer's fast path decodes exactly as the schema (pure, no broker): whatever it accepts
the pydantic model accepts with the same values, and whatever the model accepts it accepts too —
over generated ids, numbers, flags and versions, including the edges (a final newline, control
characters, the longest id, non-finite and negative numbers, wrong JSON types)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.events import MAX_ID_LENGTH
from schemas.times import Horizon, event_time
from scorer.decode import decode_batch, decode_one, fast_path
from tests.test_decode_process import Record, event

NUMBER_FIELDS = ("time_s", *(f"v{k}" for k in range(1, 29)), "amount")

# Ids: any text (control characters, newlines, non-ASCII) around the length limit, and the
# shapes that broke the regex (a valid id with a final newline or other control character).
ids = st.one_of(
    st.text(min_size=0, max_size=MAX_ID_LENGTH + 3),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=MAX_ID_LENGTH).map(
        lambda s: s[:MAX_ID_LENGTH]),
    st.builds(lambda s, end: s + end, st.text(min_size=1, max_size=MAX_ID_LENGTH),
              st.sampled_from(["\n", "\r", "\x00", "\x7f", "\t", "\x1f", "\r\n"])),
    st.just("x" * MAX_ID_LENGTH), st.just("x" * (MAX_ID_LENGTH + 1)),
    st.integers(), st.none(), st.booleans(),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
    st.sampled_from([0, -0.0, 1e308, -1e-9, 5e-324]),
    st.booleans(), st.none(), st.text(max_size=3),
)
flags = st.one_of(st.sampled_from([0, 1, 2, -1, 0.0, 1.0, True, False, None, "1"]),
                  st.integers())
versions = st.sampled_from([1, 1.0, True, 2, 0, "1", None])
MISSING = object()


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    out = event(1)
    out["transaction_id"] = draw(ids)
    for name in draw(st.sets(st.sampled_from(NUMBER_FIELDS), max_size=4)):
        out[name] = draw(numbers)
    out["is_fraud"] = draw(st.one_of(flags, st.just(MISSING)))
    out["schema_version"] = draw(st.one_of(versions, st.just(MISSING)))
    if draw(st.booleans()):
        out["note"] = draw(st.text(max_size=5))  # extra fields are ignored by both
    return {k: v for k, v in out.items() if v is not MISSING}


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()  # NaN/Infinity become JSON literals both refuse


def same_values(fast: dict[str, Any], model: dict[str, Any]) -> bool:
    if fast["transaction_id"] != model["transaction_id"]:
        return False
    if fast.get("is_fraud") != model["is_fraud"] or fast["schema_version"] != 1:
        return False
    return all(float(fast[k]) == model[k] and math.copysign(1, float(fast[k]))
               == math.copysign(1, model[k]) for k in NUMBER_FIELDS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=6))
@example([event(1, transaction_id="nl-id\n")])
@example([event(1, transaction_id="x" * MAX_ID_LENGTH, is_fraud=1)])
def test_fast_path_accepts_exactly_what_the_schema_accepts(generated):
    values = [encode(e) for e in generated]
    fast = fast_path(values)
    for value, fast_event in zip(values, fast, strict=True):
        model = decode_one(value)
        if fast_event is not None:  # the fast path accepted it: so does the model, same values
            assert not isinstance(model, str), (value, model)
            assert same_values(fast_event, model), (value, fast_event, model)
        else:  # the fast path left it to the model: the model must refuse it
            assert isinstance(model, str), (value, model)
    # and the whole decoder (fast path + model) agrees with the model, event by event
    batch = decode_batch([Record(v, offset=i) for i, v in enumerate(values)])
    reference = [decode_one(v) for v in values]
    assert [e["transaction_id"] for e in batch.events] == [
        r["transaction_id"] for r in reference if not isinstance(r, str)]
    assert [d.reason for d in batch.dead] == [r for r in reference if isinstance(r, str)]


def test_an_id_with_a_final_newline_is_refused_on_the_fast_path():
    """`re.match` with `$` matched before a final newline: `nl-id\\n` was decided (and, flagged,
    failed alert validation and vanished). Both paths refuse it now, with the reason."""
    records = [Record(encode(event(1, transaction_id=tid))) for tid in
               ("nl-id\n", "nl-id\r\n", "ok-id")]
    assert fast_path([r.value for r in records])[:2] == [None, None]
    batch = decode_batch(records)
    assert [e["transaction_id"] for e in batch.events] == ["ok-id"]
    assert [d.reason.split(":")[0] for d in batch.dead] == ["transaction_id"] * 2


HORIZON = Horizon(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), skew_s=3600.0)
LATEST = HORIZON.latest_time_s
# event times on both sides of the horizon, as floats and as integers, and right at it
near_latest = st.one_of(st.floats(LATEST - 5, LATEST + 5), st.integers(int(LATEST) - 5,
                                                                      int(LATEST) + 5),
                        st.sampled_from([LATEST, math.nextafter(LATEST, math.inf)]))


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly plainly valid events (so whole batches take the fast path), some beyond the
    horizon, some anything the model may refuse."""
    out = []
    for i in range(draw(st.integers(1, 6))):
        out.append(draw(events()) if draw(st.integers(0, 4)) == 0 else event(i))
        if draw(st.booleans()):
            out[-1]["time_s"] = draw(near_latest)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
@example([event(1), event(2)])  # the whole batch on the fast path, none beyond the horizon
@example([event(1), event(2, time_s=math.nextafter(LATEST, math.inf))])
def test_decoding_a_batch_with_a_horizon_is_the_model_event_by_event(generated):
    """decode_batch (its whole-batch shortcut included) keeps exactly the events the model
    keeps, with the model's values, in order, with their own records; refuses the rest with the
    model's or the horizon's reason; and its numeric columns are the model's values."""
    records = [Record(encode(e), offset=i) for i, e in enumerate(generated)]
    batch = decode_batch(records, HORIZON)
    kept, dead = [], []
    for record in records:
        result = decode_one(record.value)
        if not isinstance(result, str) and result["time_s"] > LATEST:
            result = HORIZON.refusal("time_s", event_time(result["time_s"]))
        (dead if isinstance(result, str) else kept).append((record.offset, result))
    assert [r.offset for r in batch.records] == [offset for offset, _ in kept]
    assert len(batch.events) == len(kept)
    for fast_event, (_, model) in zip(batch.events, kept, strict=True):
        assert same_values(fast_event, model), (fast_event, model)
    assert [(d.record.offset, d.reason) for d in batch.dead] == dead
    for name in NUMBER_FIELDS:
        np.testing.assert_array_equal(batch.column(name), [m[name] for _, m in kept])
    np.testing.assert_array_equal(batch.raw_matrix().reshape(len(kept), 29),
                                  np.array([[m[k] for k in NUMBER_FIELDS[1:]] for _, m in kept],
                                           dtype=np.float64).reshape(len(kept), 29))
