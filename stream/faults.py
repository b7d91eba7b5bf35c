"""Telling transient faults (retry: the broker or database will come back) from permanent ones
(retrying can never help: isolate the message that causes them). Pure."""

from __future__ import annotations

from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, DisconnectionError

#: DB-API error classes that mean "the connection or server had a problem", not "this data is bad".
_TRANSIENT_DBAPI = ("OperationalError", "InterfaceError")
#: PostgreSQL SQLSTATE classes that are about the server, not the statement: 08 connection,
#: 40 transaction rollback (serialization, deadlock), 53 resources, 57 operator intervention.
_TRANSIENT_SQLSTATE = ("08", "40", "53", "57", "58")


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` is an outage worth retrying (connection lost, server restarting, lock
    timeout, broker not available); False for errors that would repeat on every attempt (a value
    the database refuses, a message too large for the broker, a programming error)."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in (
            "KafkaConnectionError", "KafkaTimeoutError", "NoBrokersAvailable",
            "NodeNotReadyError", "RequestTimedOutError")
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state:
            return state[:2] in _TRANSIENT_SQLSTATE
        return type(exc).__name__ in _TRANSIENT_DBAPI
    return isinstance(exc, (ConnectionError, TimeoutError))
