"""Idempotent bulk inserts: rows whose natural key already exists are skipped, on SQLite and
PostgreSQL alike.

SQLite (and small batches on PostgreSQL) send one multi-row ``INSERT … ON CONFLICT DO NOTHING``.
Larger batches on PostgreSQL are ``COPY``-ed (psycopg 3) straight into the table inside a
savepoint — the fast path, since a duplicate key is rare (it only happens when a batch is
delivered again after a crash); if the COPY hits an existing key, the savepoint is rolled back
and the batch goes through the ``INSERT … ON CONFLICT DO NOTHING`` path instead. Same rows, same
order (a serial column such as ``labels.seq`` is assigned in row order), same transaction; other
errors surface as SQLAlchemy ``DBAPIError``s like any statement's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

#: Batches at least this large use COPY on PostgreSQL (below it a multi-row INSERT is as fast).
COPY_MIN_ROWS = 200


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, skipping any whose primary/unique key exists."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), list(rows))
        return
    if len(rows) >= COPY_MIN_ROWS and _copied(conn, table, rows):
        return
    conn.execute(postgresql.insert(table).on_conflict_do_nothing(), list(rows))


def _copied(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> bool:
    """COPY ``rows`` into ``table`` in a savepoint; False (and nothing written) if a key exists."""
    import psycopg

    names = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    if json_columns & set(names):  # COPY takes a JSON column's value as its JSON text
        import orjson

        rows = [{**row, **{n: None if row[n] is None else orjson.dumps(row[n]).decode()
                           for n in json_columns if n in row}} for row in rows]
    sql = f'COPY "{table.name}" ({", ".join(f"{n!s}" for n in names)}) FROM STDIN'
    raw = conn.connection.driver_connection
    savepoint = conn.begin_nested()
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            write = copy.write_row
            for row in rows:
                write([row[n] for n in names])
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return False
    except psycopg.Error as exc:
        savepoint.rollback()
        invalidated = conn.dialect.is_disconnect(exc, raw, None)
        wrapped = DBAPIError.instance(sql, None, exc, psycopg.Error,
                                      connection_invalidated=invalidated, dialect=conn.dialect)
        raise wrapped from exc
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return True
