"""Event time and its bounds.

A transaction's event time is ``time_s`` seconds after :data:`DATASET_EPOCH`; a label says when
its truth became known (``observed_at``). Both are bounded twice:

* by the schema, to a sane range (:data:`EARLIEST`, :data:`LATEST`): a time outside it is not a
  valid event, whatever the clocks say (year 9999 or ``time_s = 3e11`` cannot even be stored);
* by a :class:`Horizon` when consumed: nothing may be later than the wall clock plus the allowed
  future skew (``--max-future-skew``, :data:`DEFAULT_MAX_FUTURE_SKEW_S` by default). One event
  from a broken clock (dated 2045) would otherwise move the stream's clock and mature every
  pending decision at once, or a label dated far ahead would win over every later correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

#: The dataset's ``Time`` is seconds since its first transaction; event time is that offset from
#: this epoch (the ULB data was collected over two days in September 2013).
DATASET_EPOCH = datetime(2013, 9, 1, tzinfo=UTC)
#: No event or label time may be at or after this instant (the schema's range).
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: The Unix epoch (UTC): stored instants are microseconds since it.
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: No label may be observed before this instant (the schema's range for ``observed_at``).
EARLIEST = UNIX_EPOCH
#: ``time_s`` must be below this: event time before :data:`LATEST`.
MAX_TIME_S = (LATEST - DATASET_EPOCH).total_seconds()
#: How far ahead of the wall clock an event or label time may be, by default (seconds).
DEFAULT_MAX_FUTURE_SKEW_S = 3600.0


def as_utc(when: datetime) -> datetime:
    """``when`` as an aware UTC datetime: a naive one is UTC (SQLite hands stored times back
    naive), an aware one is converted."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def micros(when: datetime) -> int:
    """Whole microseconds since the Unix epoch (a naive ``when`` is UTC)."""
    delta = as_utc(when) - UNIX_EPOCH  # integer arithmetic: 4x cheaper than `// timedelta`
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The aware UTC instant ``us`` microseconds after the Unix epoch."""
    return UNIX_EPOCH + timedelta(microseconds=int(us))


def event_time(time_s: float) -> datetime:
    """The absolute event time (UTC) of a transaction ``time_s`` seconds into the dataset."""
    return DATASET_EPOCH + timedelta(seconds=time_s)


#: :data:`DATASET_EPOCH` in microseconds since the Unix epoch.
DATASET_EPOCH_US = micros(DATASET_EPOCH)


def event_time_us(time_s: np.ndarray) -> np.ndarray:
    """:func:`event_time` of each of ``time_s`` (``(n,)``, each in [0, :data:`MAX_TIME_S`)) as
    int64 microseconds since the Unix epoch, computed for the whole array and rounded exactly as
    ``timedelta(seconds=t)`` rounds: whole seconds, then the fraction's microseconds (the
    product ``frac * 1e6`` in float64) to the nearest, ties to even."""
    fraction, whole = np.modf(np.asarray(time_s, dtype=np.float64))
    return (DATASET_EPOCH_US + whole.astype(np.int64) * 1_000_000
            + np.rint(fraction * 1e6).astype(np.int64))


def dataset_seconds(when: datetime) -> float:
    """The inverse of :func:`event_time`: seconds of ``when`` (aware) since the dataset epoch."""
    return (when - DATASET_EPOCH).total_seconds()


def in_range_reason(when: datetime) -> str | None:
    """None if aware ``when`` is in the schema's range [:data:`EARLIEST`, :data:`LATEST`), else
    why not (compared without converting: year 1 at +01:00 cannot be converted to UTC)."""
    if EARLIEST <= when < LATEST:
        return None
    return (f"{when.isoformat()} is outside {EARLIEST.date().isoformat()} .. "
            f"{LATEST.date().isoformat()} (UTC)")


@dataclass(frozen=True)
class Horizon:
    """The latest time a consumed event may carry: ``now`` (the wall clock when its batch was
    read) plus ``skew_s`` seconds."""

    now: datetime
    skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S

    @classmethod
    def from_wall_clock(cls, skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> Horizon:
        return cls(datetime.now(UTC), skew_s)

    @property
    def latest(self) -> datetime:
        return self.now + timedelta(seconds=self.skew_s)

    @property
    def latest_time_s(self) -> float:
        """:attr:`latest` as a transaction's ``time_s`` (dataset seconds)."""
        return dataset_seconds(self.latest)

    def refusal(self, field: str, when: datetime) -> str:
        """The one-line dead-letter reason for ``field`` at ``when`` beyond :attr:`latest`."""
        return (f"{field}: {when.isoformat()} is more than {_duration(self.skew_s)} ahead of "
                f"the wall clock ({self.now.isoformat(timespec='seconds')}; "
                "see --max-future-skew)")


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
