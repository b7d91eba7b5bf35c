"""The keyed scorer's fast path decodes exactly as the schema (pure, no broker): whatever it
accepts the pydantic model accepts with the same values; the whole decoder (fast path, then the
model) gives, event by event, what the model alone gives; and the events replay writes (a plain
``event_time``, no extra features) all take the fast path — over generated ids, amounts, flags,
versions, extra features and ``event_time`` texts, including their edges (offsets, fractions,
impossible dates, the schema's year range, other formats the model parses)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.times import Horizon
from scorer.keyed_decode import fast_keyed, keyed_decoder, model_keyed
from tests.test_decode_process import Record
from tests.test_fast_path import flags, ids, numbers

MISSING = object()
PLAIN = "plain"  # marks an event in the shape replay writes


def replay_time(when: datetime) -> str:
    """As ``producer/keyed_replay.py`` writes ``event_time``."""
    return when.isoformat().replace("+00:00", "Z")


instants = st.datetimes(min_value=datetime(1965, 1, 1), max_value=datetime(2105, 1, 1))
offsets = st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59", "+24:00",
                           "-23:59", "+99:00", "", "z", "+0530", "+05:30:15", " Z"])
fractions = st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9).map(
    lambda digits: "." + digits), st.just("."), st.just(",5"))
bad_dates = st.sampled_from(["2019-02-30T10:00:00Z", "2019-13-01T00:00:00Z",
                             "2019-01-01T24:00:00Z", "2019-01-01T23:59:60Z",
                             "2019-01-01T23:60:00Z", "2019-1-01T00:00:00Z",
                             "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z",
                             "2099-12-31T23:59:59.999999Z", "2100-01-01T00:00:00Z",
                             "2100-01-01T00:30:00+01:00", "1970-01-01T00:30:00+01:00",
                             "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                             "2019-01-01 10:00:00Z", "2019-01-01t10:00:00Z", "2019-01-01",
                             "2019-01-01T10:00Z", "2019-01-01T10:00:00", "20190101T100000Z",
                             "2019-01-01T10:00:00.123456789Z", "١٢٣٤-01-01T00:00:00Z"])
versions = st.sampled_from([2, 2.0, True, 1, 3, "2", None])
features = st.sampled_from([MISSING, None, {}, {"x": 1.0}, {"x": "a"}, [], "f"])


@st.composite
def event_times(draw: st.DrawFn) -> tuple[Any, bool]:
    """An ``event_time`` value and whether it is in replay's plain shape."""
    kind = draw(st.sampled_from([0, 0, 0, 1, 2, 3]))
    when = draw(instants)
    if kind == 0:
        return replay_time(when.replace(tzinfo=UTC)), True
    if kind == 1:
        text = when.strftime("%Y-%m-%dT%H:%M:%S") + draw(fractions) + draw(offsets)
        return text, False
    if kind == 2:
        return draw(bad_dates), False
    return draw(st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.none(),
                          st.booleans())), False


@st.composite
def keyed_events(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A keyed event with up to two fields changed from a valid one (so each change is seen
    alone), and whether replay could have written it."""
    stamp, plain = draw(event_times())
    out: dict[str, Any] = {"schema_version": 2, "transaction_id": "t-1", "event_time": stamp,
                           "amount": 12.5, "customer_id": "c-1", "terminal_id": "m-1",
                           "is_fraud": 0}
    for name in draw(st.sets(st.sampled_from(FIELDS), max_size=2)):
        out[name] = draw(CHANGES[name])
        plain = plain and replay_could_write(name, out[name])
    return {k: v for k, v in out.items() if v is not MISSING}, plain


def replay_could_write(name: str, value: Any) -> bool:
    """Whether field ``name`` with ``value`` is as replay writes it."""
    if name == "amount":
        return type(value) is float and math.isfinite(value) and value >= 0
    if name == "is_fraud":
        return value is MISSING or value is None or (type(value) is int and value in (0, 1))
    if name == "schema_version":
        return type(value) is int and value == 2
    if name == "features":
        return value is MISSING or value is None
    return name == "note"


CHANGES = {"transaction_id": ids, "customer_id": ids, "terminal_id": ids, "amount": numbers,
           "is_fraud": st.one_of(flags, st.just(MISSING)),
           "schema_version": st.one_of(versions, st.just(MISSING)), "features": features,
           "note": st.text(max_size=5)}  # extra fields are ignored by both
FIELDS = sorted(CHANGES)


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def same(fast: dict[str, Any], model: dict[str, Any]) -> bool:
    """Equal fields, and the amount's sign too (``-0.0 == 0.0``)."""
    return fast == model and math.copysign(1, fast["amount"]) == math.copysign(1, model["amount"])


FAR = Horizon(datetime(2100, 1, 1, tzinfo=UTC), 0)  # nothing valid is beyond it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(keyed_events(), min_size=1, max_size=6))
@example([({"schema_version": 2, "transaction_id": "t", "event_time": "2019-01-01T10:00:00Z",
            "amount": -0.0, "customer_id": "c", "terminal_id": "m"}, True)])
@example([({"schema_version": 2, "transaction_id": "t", "event_time": "2019-01-01T10:00:00Z",
            "amount": 1, "customer_id": "c", "terminal_id": "m", "is_fraud": flag}, False)
          for flag in (True, 1.0, 2, None)])
@example([({"schema_version": 2, "transaction_id": "t", "event_time": "2019-01-01T10:00:00Z",
            "amount": 1, "customer_id": "c", "terminal_id": "m", name: value}, False)
          for name, value in (("amount", True), ("amount", -1e-9), ("schema_version", 3),
                              ("schema_version", True), ("schema_version", 2.0))])
@example([({"schema_version": 2, "transaction_id": "t\n", "event_time": "2019-01-01T10:00:00Z",
            "amount": 1, "customer_id": "c", "terminal_id": "m"}, False)])
def test_keyed_fast_path_decodes_exactly_as_the_schema(generated):
    values = [encode(e) for e, _ in generated]
    for (_, plain), value in zip(generated, values, strict=True):
        fast, model = fast_keyed(value), model_keyed(value)
        if fast is not None:  # accepted: so does the model, with the same values
            assert not isinstance(model, str), (value, model)
            assert same(fast, model), (value, fast, model)
        elif plain:  # what replay writes never needs the model
            assert isinstance(model, str), (value, model)
    # the whole decoder gives, record by record, what the model alone gives
    records = [Record(v, offset=i, key=str(e.get("customer_id")).encode())
               for i, (v, (e, _)) in enumerate(zip(values, generated, strict=True))]
    decoded = list(map(keyed_decoder(FAR), records))
    for value, got in zip(values, decoded, strict=True):
        want = model_keyed(value)
        assert (got == want if isinstance(want, str) else
                not isinstance(got, str) and same(got, want)), (value, got, want)


def test_the_checks_after_decoding_hold_on_both_paths():
    """An event dated beyond the horizon, or keyed by something else than its customer id, is
    refused with the same reason whether it took the fast path or the model (``features``
    sends it to the model)."""
    now = datetime(2024, 5, 1, tzinfo=UTC)
    horizon = Horizon(now, 3600)
    late = replay_time(now + timedelta(hours=2))
    base = {"schema_version": 2, "transaction_id": "t", "amount": 5.0, "customer_id": "c",
            "terminal_id": "m"}
    for extra in ({}, {"features": {"x": 1.0}}):
        assert (fast_keyed(encode({**base, "event_time": late, **extra})) is None) == bool(extra)
        records = [Record(encode({**base, "event_time": late, **extra}), key=b"c"),
                   Record(encode({**base, "event_time": replay_time(now), **extra}), key=b"d"),
                   Record(encode({**base, "event_time": replay_time(now), **extra}), key=None),
                   Record(encode({**base, "event_time": replay_time(now), **extra}), key=b"c")]
        got = list(map(keyed_decoder(horizon), records))
        assert got[0].startswith("event_time: 2024-05-01T02:00:00+00:00 is more than 1h ahead")
        assert got[1].startswith("message key: 'd', but a keyed event must be keyed by its "
                                 "customer_id ('c')")
        assert got[2].startswith("message key: missing")
        assert got[3]["time_us"] == 1714521600 * 10**6 and got[3]["customer_id"] == "c"
