"""``store.sets.among`` (real SQLite and PostgreSQL): the rows whose column is one of the
values, exactly — none, one, more than an old SQLite's IN-list chunk, duplicates, and ids JSON
must escape (quotes, backslashes, non-ASCII, control characters) — and nothing to run for no
values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from store.db import connect
from store.sets import CHUNK, among
from store.tables import labels

NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)
ODD = ['tx-"quoted"', "tx-back\\slash", "tx-ünï-€", "tx-tab\there", "tx-", "tx-'single'"]


def stored_ids(n: int) -> list[str]:
    return [f"tx-{i:05d}" for i in range(n)] + ODD


@pytest.mark.parametrize("wanted", [0, 1, CHUNK + 137])
def test_among_finds_exactly_the_values(db_url, wanted):
    engine = connect(db_url)
    ids = stored_ids(3 * CHUNK)
    with engine.begin() as conn:
        conn.execute(labels.insert(), [
            {"label_id": f"l-{i}", "transaction_id": t, "is_fraud": i % 2, "source": "replay",
             "observed_at": NOON, "received_at": NOON}
            for i, t in enumerate(ids)])
    asked = ids[::3][:wanted] + (ODD if wanted else [])
    asked += asked[:5] + ["tx-absent", 'tx-"absent"']  # duplicates and values not stored
    with engine.connect() as conn:
        conditions = list(among(conn, labels.c.transaction_id, asked if wanted else []))
        found = [t for where in conditions
                 for t in conn.execute(select(labels.c.transaction_id).where(where)).scalars()]
    if not wanted:
        assert conditions == []
        return
    assert len(conditions) == 1  # one statement, the values as one parameter
    assert sorted(found) == sorted(set(asked) & set(ids))
