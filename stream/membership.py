"""Whether the skeleton's KafkaConsumer is a member of a stable group, and when one that has been
out of it for too long while polling should be replaced.

kafka-python 3.0.12 was seen once to spin for good without a group coordinator (no heartbeat, no
assignment, nothing consumed for 10 minutes) after the rebalance that a topic created after the
consumer subscribed caused. A client in that state does not recover by itself, while a new one
joins at once; so a consumer out of a stable group — no coordinator, or no assignment received
— for :attr:`stream.contract.ConsumerConfig.recreate_after_sessions` session timeouts while it
polls is closed and replaced by a new client with the same settings in the same group
(:func:`replacement`). Nothing else changes: its assignment seeks to the offsets stored in SQL,
as every assignment does. A broker outage also keeps a consumer out of its group; replacing the
client then is useless but harmless, once every that many session timeouts.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaConsumer

from schemas.errors import first_line

log = logging.getLogger(__name__)


def in_group(consumer: KafkaConsumer, joined: bool) -> bool:
    """True while ``consumer`` is in a stable group whose coordinator it can reach
    (``joined``: whether it ever had an assignment, the answer for another client version)."""
    try:
        coordinator = consumer._coordinator  # noqa: SLF001 - no public accessor
        return bool(coordinator.stable() and not coordinator.coordinator_unknown())
    except Exception:  # noqa: BLE001 - another client version: fall back to "joined"
        return joined


class MembershipWatch:
    """Measures how long a polling consumer has been out of its group (``sessions``: after how
    many of its session timeouts it is overdue for replacement)."""

    def __init__(self, sessions: float) -> None:
        self.sessions = sessions
        self.out_since: float | None = None

    def overdue(self, consumer: KafkaConsumer, member: bool, now: float) -> float | None:
        """The seconds ``consumer`` (``member``: in a stable group now) has been out of its
        group if that is ``sessions`` session timeouts or more, else None."""
        if member:
            self.out_since = None
            return None
        self.out_since = self.out_since or now
        out = now - self.out_since
        session_s = consumer.config["session_timeout_ms"] / 1000
        return out if out >= self.sessions * session_s else None

    def reset(self, now: float | None = None) -> None:
        self.out_since = now


def replacement(consumer: KafkaConsumer) -> KafkaConsumer:
    """A new client with ``consumer``'s settings (every one, including the broker version it
    found, so that building it needs no broker), not subscribed yet."""
    settings: dict[str, Any] = dict(consumer.config)
    return KafkaConsumer(**settings)


def retire(consumer: KafkaConsumer) -> None:
    """Close a replaced client (a stuck one may fail to: nothing of it is needed any more)."""
    try:
        consumer.close(autocommit=False, timeout_ms=5000)
    except Exception as exc:  # noqa: BLE001
        log.warning("closing the replaced Kafka consumer: %s", first_line(exc))
