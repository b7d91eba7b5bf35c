"""``store.sets.rows_among`` (real SQLite and PostgreSQL): the rows whose column is one of the
values, exactly — none, one, more than an old SQLite's IN-list chunk, duplicates, and ids JSON
must escape (quotes, backslashes, non-ASCII, control characters) — the query's other parameters
bound, one statement per lookup, nothing run for no values; and the IN-list form of an SQLite
without ``json_each``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select

from store import sets
from store.db import connect
from store.sets import CHUNK, Among, rows_among
from store.tables import labels

NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)
ODD = ['tx-"quoted"', "tx-back\\slash", "tx-ünï-€", "tx-tab\there", "tx-", "tx-'single'"]


def stored_ids(n: int) -> list[str]:
    return [f"tx-{i:05d}" for i in range(n)] + ODD


def _of_label(among: Among) -> Any:
    lc = labels.c
    return select(lc.transaction_id).where(among(lc.transaction_id),
                                           lc.is_fraud == bindparam("is_fraud"))


def _lookup(db_url: str, wanted: int) -> None:
    engine = connect(db_url)
    ids = stored_ids(3 * CHUNK)
    with engine.begin() as conn:
        conn.execute(labels.insert(), [
            {"label_id": f"l-{i}", "transaction_id": t, "is_fraud": i % 2, "source": "replay",
             "observed_at": NOON, "received_at": NOON}
            for i, t in enumerate(ids)])
    fraud = {t for i, t in enumerate(ids) if i % 2}
    asked = ids[::3][:wanted] + (ODD if wanted else [])
    asked += asked[:5] + ["tx-absent", 'tx-"absent"']  # duplicates and values not stored
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]) if "SELECT" in args[2] else None)
    with engine.connect() as conn:
        for is_fraud, expected in ((1, fraud), (0, set(ids) - fraud)):
            statements.clear()
            found = [t for t, in rows_among(conn, _of_label, asked if wanted else [],
                                            is_fraud=is_fraud)]
            if not wanted:
                assert statements == [] and found == []
                continue
            assert sorted(found) == sorted(set(asked) & expected)
            chunks = -(-len(set(asked)) // CHUNK)
            assert len(statements) == (1 if sets._JSON_EACH or "postgresql" in db_url
                                       else chunks)


@pytest.mark.parametrize("wanted", [0, 1, CHUNK + 137])
def test_rows_among_finds_exactly_the_values(db_url, wanted):
    _lookup(db_url, wanted)


@pytest.mark.parametrize("wanted", [1, CHUNK + 137])
def test_rows_among_on_an_sqlite_without_json_each(tmp_path, monkeypatch, wanted):
    """SQLite before 3.38 has no built-in ``json_each``: IN-lists of at most CHUNK values, one
    statement each, the same rows."""
    monkeypatch.setattr(sets, "_JSON_EACH", False)
    _lookup(f"sqlite:///{tmp_path}/old.db", wanted)
