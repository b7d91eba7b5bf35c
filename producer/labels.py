"""How ``fraudstream replay`` delivers the truth (``Class``): the ``--labels`` mode, and the
schedule of delayed ``label.v1`` events.

``--labels inline`` puts ``is_fraud`` inside each transaction event; ``none`` sends neither;
``delayed:DURATION`` sends transactions without ``is_fraud`` and, for each fraud row, one
``label.v1`` event on the labels topic once DURATION of *dataset* time (the ``Time`` column) has
passed since the transaction -- as chargebacks arrive days after the payment. See
:class:`LabelSchedule` for the exact order.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from typing import NamedTuple

from schemas.durations import parse_duration
from schemas.errors import FraudstreamError
from schemas.events import event_time
from schemas.ids import derived_id

#: ``--labels`` values, for help texts and errors.
LABEL_MODES_HELP = "inline|delayed:DURATION|none"


@dataclass(frozen=True)
class LabelMode:
    """A parsed ``--labels`` value. ``kind`` is ``inline``, ``delayed`` or ``none``; for
    ``delayed``, ``delay_s`` is the delay in seconds of dataset time and ``delay_text`` the
    duration as given (for the label's ``reason``)."""

    kind: str
    delay_s: float = 0.0
    delay_text: str = ""

    @classmethod
    def parse(cls, value: str | bool) -> LabelMode:
        """``"inline"``, ``"none"``, ``"delayed:48h"``; also True (inline) / False (none), the
        former ``labels=`` flag. FraudstreamError on anything else."""
        if value is True or value == "inline":
            return cls("inline")
        if value is False or value == "none":
            return cls("none")
        if isinstance(value, str) and value.startswith("delayed:"):
            text = value.removeprefix("delayed:").strip()
            return cls("delayed", parse_duration(text), text)
        raise FraudstreamError(f"--labels: expected {LABEL_MODES_HELP}, got {value!r}")

    @property
    def inline(self) -> bool:
        """True if transaction events carry ``is_fraud``."""
        return self.kind == "inline"

    @property
    def delayed(self) -> bool:
        """True if fraud rows get a separate, delayed label event."""
        return self.kind == "delayed"

    @property
    def needs_class(self) -> bool:
        """True if the ``Class`` column is read (and so must be valid)."""
        return self.kind != "none"


class PendingLabel(NamedTuple):
    """A label event waiting for its due time. ``due_s`` is dataset seconds (``Time`` + delay),
    ``seq`` breaks ties in scheduling order, ``row`` is the 1-based data row of its transaction
    (as counted by ``--skip``), ``key`` the Kafka key (the transaction id), ``value`` the JSON."""

    due_s: float
    seq: int
    row: int
    key: bytes
    value: bytes


def label_event(transaction_id: str, time_s: float, delay_s: float, delay_text: str) -> bytes:
    """The ``label.v1`` JSON (UTF-8) saying transaction ``transaction_id`` (dataset time
    ``time_s`` seconds) is fraud, observed ``delay_s`` seconds later."""
    return json.dumps({
        "schema_version": 1,
        "label_id": derived_id("replay", transaction_id),
        "transaction_id": transaction_id,
        "label": "fraud",
        "source": "chargeback",  # the delayed truth stands for the card issuer's chargeback
        "observed_at": event_time(time_s + delay_s).isoformat(),
        "reason": f"replayed Class=1 after {delay_text}",
    }, separators=(",", ":")).encode()


class LabelSchedule:
    """Pending delayed labels, released in due-time order against the dataset clock.

    The replay calls :meth:`add` after sending a fraud transaction and, *before* sending each
    transaction of dataset time ``t``, sends everything :meth:`pop_due` ``(t)`` returns (labels
    with ``due_s <= t``). So, with ``Time`` non-decreasing as in creditcard.csv, a label follows
    its own transaction and every transaction with ``Time < due_s``, and precedes every
    transaction with ``Time >= due_s``; with ``--speedup`` pacing it is thus sent when the
    scaled dataset clock reaches its due time (to within one row). Labels still pending when the
    file ends (truth arriving after the replayed window) are released by :meth:`drain`.
    """

    def __init__(self, delay_s: float, delay_text: str) -> None:
        self.delay_s = delay_s
        self.delay_text = delay_text
        self._heap: list[PendingLabel] = []
        self._seq = 0
        #: Due time (dataset seconds) of the earliest pending label; +inf when none is pending.
        self.next_due = float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, transaction_id: str, time_s: float, row: int) -> None:
        """Schedule the fraud label of ``transaction_id`` (dataset time ``time_s`` s, data row
        ``row``) for ``time_s + delay_s``."""
        self._seq += 1
        label = PendingLabel(time_s + self.delay_s, self._seq, row, transaction_id.encode(),
                             label_event(transaction_id, time_s, self.delay_s, self.delay_text))
        heapq.heappush(self._heap, label)
        self.next_due = self._heap[0].due_s

    def pop_due(self, now_s: float) -> list[PendingLabel]:
        """Remove and return, in due order, the labels with ``due_s <= now_s`` (dataset s)."""
        due: list[PendingLabel] = []
        heap = self._heap
        while heap and heap[0].due_s <= now_s:
            due.append(heapq.heappop(heap))
        self.next_due = heap[0].due_s if heap else float("inf")
        return due

    def drain(self) -> list[PendingLabel]:
        """Remove and return every pending label, in due order."""
        return self.pop_due(float("inf"))
