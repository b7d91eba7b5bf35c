"""Event time and label time are bounded (pure, no broker): by the schema's range, and by the
horizon (the wall clock plus --max-future-skew) when consumed — out-of-range events are dead
letters with the reason, decided while decoding (never a crash, never a batch bisection)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from labels.decode import decode_labels
from schemas.errors import FraudstreamError
from schemas.times import MAX_TIME_S, Horizon, dataset_seconds
from scorer.decode import decode_batch, fast_path
from stream.cli import add_consumer_args, check_consumer_args
from tests.test_decode_process import Record, encode, event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HORIZON = Horizon(NOW, skew_s=3600.0)


def test_event_times_beyond_the_range_or_the_horizon_are_dead_letters_with_the_reason():
    in_2045 = dataset_seconds(datetime(2045, 1, 1, tzinfo=UTC))
    just_inside = dataset_seconds(NOW + timedelta(minutes=59))
    just_outside = dataset_seconds(NOW + timedelta(minutes=61))
    times = [10.0, in_2045, 3e11, MAX_TIME_S, 1e308, just_inside, just_outside, 172_000.0]
    records = [Record(encode(event(i, time_s=t)), offset=i) for i, t in enumerate(times)]
    assert [e is None for e in fast_path([r.value for r in records])] == [
        False, False, True, True, True, False, False, False]  # the schema's range, vectorised
    batch = decode_batch(records, HORIZON)
    assert [e["transaction_id"] for e in batch.events] == ["t-0", "t-5", "t-7"]
    reasons = {d.record.offset: d.reason for d in batch.dead}
    assert sorted(reasons) == [1, 2, 3, 4, 6]
    assert all(r.startswith("time_s: ") and "\n" not in r for r in reasons.values())
    assert "2045-01-01T00:00:00+00:00 is more than 1h ahead of the wall clock" in reasons[1]
    assert "less than" in reasons[2]  # the schema: before 2100
    # Without a horizon (a reader of the raw topic), only the schema's range applies.
    assert len(decode_batch(records).events) == 5


def label(observed_at: str, **extra) -> bytes:
    return json.dumps({"schema_version": 1, "label_id": f"l-{observed_at}", "transaction_id": "t",
                       "label": "fraud", "source": "chargeback", "observed_at": observed_at,
                       **extra}).encode()


def test_label_times_beyond_the_range_or_the_horizon_are_dead_letters_with_the_reason():
    values = ["2013-09-02T10:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00",
              (NOW + timedelta(hours=2)).isoformat(), (NOW + timedelta(minutes=30)).isoformat(),
              "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]
    decoded = decode_labels([Record(label(v), offset=i) for i, v in enumerate(values)], HORIZON)
    assert [r["observed_at"] for r in decoded.rows] == [
        datetime(2013, 9, 2, 10, tzinfo=UTC), NOW + timedelta(minutes=30)]
    assert all(r["received_at"] == NOW for r in decoded.rows)
    reasons = {d.record.offset: d.reason for d in decoded.dead}
    assert sorted(reasons) == [1, 2, 3, 5, 6]
    assert all(r.startswith("observed_at: ") and "\n" not in r for r in reasons.values())
    assert "outside 1970-01-01 .. 2100-01-01" in reasons[1]
    assert "more than 1h ahead of the wall clock" in reasons[3]


@pytest.mark.parametrize("value", ["soon", "-1h", ""])
def test_a_bad_max_future_skew_is_a_one_line_error(value):
    parser = argparse.ArgumentParser()
    add_consumer_args(parser, topic="t", what="x", group="g", group_help="g", batch_size=1,
                      dlq_topic="d")
    with pytest.raises(FraudstreamError, match="--max-future-skew"):
        check_consumer_args(parser.parse_args([f"--max-future-skew={value}"]))


def test_event_times_computed_per_batch_round_exactly_as_timedelta():
    """The scorer's decision rows take event times for the whole batch (``event_time_us``); each
    must be the very instant ``event_time`` gives (timedelta's rounding: microsecond ties to
    even, whole seconds exact), over the schema's whole range."""
    import numpy as np

    from schemas.times import event_time, event_time_us

    rng = np.random.default_rng(7)
    ties = [k + (j + 0.5) / 1e6 for k in (0, 1, 172_792, 10**9) for j in range(500)]
    times = np.concatenate([rng.uniform(0, MAX_TIME_S, 20_000), rng.uniform(0, 200_000, 20_000),
                            np.array(ties), [np.nextafter(MAX_TIME_S, 0), 0.0, 5e-7, 1.5e-6]])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [(event_time(t) - epoch) // timedelta(microseconds=1) for t in times.tolist()]
    assert event_time_us(times).tolist() == expected


def test_micros_is_timedeltas_floor_division_over_the_whole_datetime_range():
    """``micros`` (integer arithmetic on the delta's days/seconds/µs) equals the obvious
    ``delta // timedelta(microseconds=1)`` before and after the epoch, naive or in any zone."""
    import random

    from schemas.times import micros

    rng = random.Random(11)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
    span_us = 9_000 * 365 * 86_400 * 10**6  # years 2 .. ~9000
    whens = [datetime(2, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(span_us))
             for _ in range(4_000)]
    whens += [datetime(1969, 12, 31, 23, 59, 59, 999_999), datetime(1970, 1, 1),
              datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i, when in enumerate(whens):
        if when.tzinfo is not None:
            when = when.astimezone(zones[i % 3])
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        assert micros(when) == (aware - epoch) // timedelta(microseconds=1), when
