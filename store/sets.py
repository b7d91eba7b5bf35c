"""Set lookups: "this column is one of these values" as few, cheap statements per dialect."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

#: Values per IN (...) list on SQLite (its variable limit is 999 on old builds).
CHUNK = 900


def among(conn: Connection, column: Any, values: Iterable[str]) -> Iterator[Any]:
    """Conditions "``column`` is one of ``values``" (strings), one per query to run:
    PostgreSQL, one ``= ANY(array)`` with the values as a single parameter (an IN-list of 900
    parameters cost ~30 ms a query there); SQLite, an IN-list per :data:`CHUNK` values. No
    values: no condition (nothing to run)."""
    distinct = sorted(set(values))
    if conn.dialect.name == "postgresql":
        if distinct:
            yield column == any_(bindparam(None, distinct, type_=ARRAY(String)))
        return
    for i in range(0, len(distinct), CHUNK):
        yield column.in_(distinct[i:i + CHUNK])
