"""Idempotent bulk inserts: rows whose natural key already exists are skipped, on SQLite and
PostgreSQL alike.

Rows come as mappings or as :class:`store.columns.Columns`; either way they are written column by
column. An instant column given as :class:`store.columns.Micros` (int64 microseconds) is put in
its storage form for the whole batch at once, never through one datetime object per row.

SQLite: one prepared ``INSERT … ON CONFLICT DO NOTHING`` run by the driver's ``executemany``,
the values converted to their storage form column by column with the very bind processors
SQLAlchemy would apply (so the stored values are the same as through ``Connection.execute``,
without its per-row bookkeeping, which cost ~5x SQLite's own insert); a ``Micros`` column as the
same ``DATETIME`` text, formatted by numpy.

PostgreSQL: small batches send one multi-row ``INSERT … ON CONFLICT DO NOTHING``. Larger ones are
binary-``COPY``-ed (psycopg 3; a ``Micros`` column as timestamptz's own binary form, int64
microseconds since 2000) straight into the table inside a savepoint — the fast path, since
a duplicate key is rare (it only happens when a batch is delivered again after a crash); if the
COPY hits an existing key, the savepoint is rolled back and the batch goes through the
``INSERT … ON CONFLICT DO NOTHING`` path instead. Same rows, same order (a serial column such as
``labels.seq`` is assigned in row order), same transaction; other errors surface as SQLAlchemy
``DBAPIError``s like any statement's.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from store.columns import Column, Columns, Micros, as_columns

#: Batches at least this large use COPY on PostgreSQL; below it a multi-row INSERT is as fast.
#: ``bench/bench_copy_threshold.py``: the inserts (decisions, keyed_transactions) cross at
#: 32-50 rows, COPY 1.3-2.1x as fast for decisions from 50 to 200; card_state's upsert (COPY
#: through a staging table) stays within noise of the INSERT up to ~100 rows.
COPY_MIN_ROWS = 50
#: PostgreSQL's ``text`` type: a JSON column is COPY-ed as its JSON text (same binary form).
_PG_TEXT_OID, _PG_JSON_OID, _PG_BYTEA_OID = 25, 114, 17
#: PostgreSQL's timestamp epoch (2000-01-01 UTC) in microseconds since the Unix epoch.
_PG_EPOCH_US = 946_684_800_000_000

_Processor = Callable[[Any], Any] | None
# per engine: {(table, column names): what a batch needs} — built once, reused every batch
_prepared: weakref.WeakKeyDictionary[Engine, dict[tuple[Any, ...], Any]] = \
    weakref.WeakKeyDictionary()


def insert_ignore(conn: Connection, table: Table,
                  rows: Sequence[Mapping[str, Any]] | Columns) -> None:
    """Insert ``rows`` (mappings with the same keys, or :class:`store.columns.Columns`) into
    ``table``, skipping any whose primary/unique key exists."""
    if not len(rows):
        return
    columns = as_columns(rows)
    if conn.dialect.name != "postgresql":
        _sqlite_insert(conn, table, columns)
        return
    if len(columns) >= COPY_MIN_ROWS and _copied(conn, table, columns):
        return
    conn.execute(_conflict_insert(postgresql, table, None), list(columns))


def _cache(conn: Connection) -> dict[tuple[Any, ...], Any]:
    return _prepared.setdefault(conn.engine, {})


def _sqlite_insert(conn: Connection, table: Table, rows: Columns,
                   update: tuple[tuple[str, ...], tuple[str, ...]] | None = None) -> None:
    """One prepared ``INSERT … ON CONFLICT DO NOTHING`` (``update``: (keys, columns), ``DO
    UPDATE SET`` those columns instead) run by the driver's ``executemany``."""
    names = tuple(rows.names)
    cache = _cache(conn)
    key = (table.name, names) if update is None else (table.name, names, *update)
    if key not in cache:
        compiled = _conflict_insert(sqlite, table, update).compile(
            dialect=conn.dialect, column_keys=list(names))
        order = [table.c[name] for name in compiled.positiontup or ()]
        if sorted(c.name for c in order) != sorted(names) or any(
                c.default is not None for c in table.c if c.name not in names):
            cache[key] = None  # (not the case of any table here) let SQLAlchemy do it
        else:
            processors = [c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                          for c in order]
            cache[key] = (str(compiled), [c.name for c in order], processors)
    prepared = cache[key]
    if prepared is None:
        conn.execute(_conflict_insert(sqlite, table, update), list(rows))
        return
    sql, order_names, processors = prepared
    columns = [_storage_column(rows[name], processor)
               for name, processor in zip(order_names, processors, strict=True)]
    conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))


def _conflict_insert(dialect: Any, table: Table,
                     update: tuple[tuple[str, ...], tuple[str, ...]] | None) -> Any:
    """``table``'s INSERT in ``dialect`` (the ``postgresql`` or ``sqlite`` module) that skips a
    row whose key exists, or with ``update`` ((keys, columns)) sets those columns instead."""
    stmt = dialect.insert(table)
    if update is None:
        return stmt.on_conflict_do_nothing()
    keys, columns = update
    return stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: stmt.excluded[c] for c in columns})


def _storage_column(values: Column, processor: _Processor) -> Sequence[Any]:
    """``values`` as stored: an instant column formatted at once (SQLAlchemy's ``DATETIME``
    text, which :func:`store.columns.Micros.sqlite_text` reproduces); otherwise through
    ``processor`` once per distinct object (a batch's rows share e.g. its scored-at time and
    its flags' two booleans; by identity, not equality: equal datetimes in two time zones are
    stored differently)."""
    if isinstance(values, Micros):
        return values.sqlite_text()
    if processor is None:
        return values
    # ``values`` keeps every object alive meanwhile, so an id is not reused
    objects = dict(zip(map(id, values), values, strict=True))
    stored = {key: processor(value) for key, value in objects.items()}
    return list(map(stored.__getitem__, map(id, values)))


def _pg_types(conn: Connection, table: Table, names: Sequence[str]) -> list[int]:
    """The type oids of ``names`` in ``table`` as the server has them (JSON as text)."""
    cache = _cache(conn)
    key = (table.name, tuple(names))
    if key not in cache:
        found = dict(conn.execute(text(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = "
            "CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"), {"t": table.name}).all())
        cache[key] = [_PG_TEXT_OID if found[n] == _PG_JSON_OID else found[n] for n in names]
    return list(cache[key])


def _copied(conn: Connection, table: Table, rows: Columns) -> bool:
    """COPY ``rows`` into ``table`` in a savepoint; False (and nothing written) if a key exists."""
    import psycopg

    savepoint = conn.begin_nested()
    try:
        _copy(conn, table, table.name, rows)
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return False
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    return True


def _copy(conn: Connection, table: Table, target: str, rows: Columns) -> None:
    """Binary-COPY ``rows`` (columns of ``table``) into the table ``target`` (``table`` itself
    or a staging table like it); psycopg errors other than a unique violation are raised as
    SQLAlchemy ``DBAPIError``s."""
    import psycopg

    names = rows.names
    types = _pg_types(conn, table, names)
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    columns: list[Sequence[Any]] = []
    for i, name in enumerate(names):
        values = rows[name]
        if isinstance(values, Micros):  # timestamptz's binary form, sent as the bytes it is
            types[i] = _PG_BYTEA_OID
            data = (values.us - _PG_EPOCH_US).astype(">i8").tobytes()
            values = [data[j:j + 8] for j in range(0, len(data), 8)]
        elif name in json_columns:  # COPY takes a JSON column's value as its JSON text
            import orjson

            values = [None if v is None else orjson.dumps(v).decode() for v in values]
        columns.append(values)
    sql = f'COPY "{target}" ({", ".join(f"{n!s}" for n in names)}) FROM STDIN (FORMAT BINARY)'
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in zip(*columns, strict=True):
                write(row)
    except psycopg.errors.UniqueViolation:
        raise
    except psycopg.Error as exc:
        invalidated = conn.dialect.is_disconnect(exc, raw, None)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error,
                                  connection_invalidated=invalidated,
                                  dialect=conn.dialect) from exc


def dialect_insert(dialect: str, table: Table) -> Any:
    """``table``'s INSERT in ``dialect`` (a connection's ``dialect.name``; one with
    ``on_conflict_do_*``)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]] | Columns,
           keys: Sequence[str], update: Sequence[str]) -> None:
    """Insert ``rows`` into ``table``, or where a row with the same ``keys`` exists, set its
    ``update`` columns to the new values (no two rows may share ``keys``). PostgreSQL, from
    :data:`COPY_MIN_ROWS` rows: binary-COPY into a session staging table like ``table`` (its
    rows deleted at commit), then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``; otherwise
    one ``INSERT … ON CONFLICT DO UPDATE`` executed for all rows (SQLite: prepared once, run by
    the driver's ``executemany``, as :func:`insert_ignore`)."""
    if not len(rows):
        return
    if conn.dialect.name != "postgresql":
        _sqlite_insert(conn, table, as_columns(rows), (tuple(keys), tuple(update)))
        return
    if len(rows) < COPY_MIN_ROWS:
        conn.execute(_conflict_insert(postgresql, table, (tuple(keys), tuple(update))),
                     list(rows))
        return
    columns = as_columns(rows)
    staging = f"staging_{table.name}"
    conn.exec_driver_sql(f'CREATE TEMP TABLE IF NOT EXISTS "{staging}" (LIKE "{table.name}") '
                         "ON COMMIT DELETE ROWS")
    _copy(conn, table, staging, columns)
    names = ", ".join(f'"{n}"' for n in columns.names)
    conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{staging}" '
        f'ON CONFLICT ({", ".join(keys)}) DO UPDATE SET '
        + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update))
    conn.exec_driver_sql(f'DELETE FROM "{staging}"')  # a second upsert in this transaction
