"""What the desk shows, on real SQLite: scores near 1 with enough digits to rank them, a score
histogram whose bins separate alerts that all score above 0.9, no bulk-close bar where nothing
can be selected, a placeholder that does not look like a value."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from desk import auth
from desk.app import create_app, score_text
from store.db import connect
from store.tables import alerts
from tests.desk_fixtures import CHEAP_HASHER, add_users, login, seed


def test_scores_near_one_keep_their_order_on_screen():
    scores = [0.9, 0.99, 0.9991, 0.99934, 0.999991, 0.9999968, 0.99999971, 0.999999995]
    texts = [score_text(s) for s in scores]
    assert texts[0] == "0.900" and texts[5] == "0.99999680"
    assert len(set(texts)) == len(texts)  # 1.000 for all of them would hide the order
    assert [float(t) for t in texts] == sorted(float(t) for t in texts)
    # closer to 1 than 1e-9 (logits above ~21): the distance to 1, still in order
    assert score_text(1 - 1e-12) == "1 − 1.0e-12" and score_text(1 - 3e-14) == "1 − 3.0e-14"
    assert score_text(0.123456) == "0.123" and score_text(1.0) == "1.000"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    engine = connect(f"sqlite:///{tmp_path / 'd.db'}")
    seed(engine, n_alerts=30, n_genuine=0)
    near_one = [0.93, 0.995, 0.9995, 0.99995, 0.999995, 0.9999995, 1.0]
    with engine.begin() as conn:
        for i, score in enumerate(near_one):
            conn.execute(update(alerts).where(alerts.c.transaction_id == f"tx-{i:04d}")
                         .values(score=score))
    passwords = add_users(engine)
    c = TestClient(create_app(engine, secret="test-secret-of-enough-length"))
    login(c, "ann", passwords["ann"])
    yield c
    engine.dispose()


def test_score_histogram_separates_alerts_above_09(client):
    bins = dict(client.get("/api/dashboard").json()["scores"])
    # from the first bin holding an alert (.5: the seed's lowest is 0.617) to the last
    assert list(bins) == [".5", ".9", ".99", ".999", ".9999", ".99999", ".999999"]
    assert sum(bins.values()) == 30
    assert [bins[k] for k in (".99", ".999", ".9999", ".99999", ".999999")] == [1, 1, 1, 1, 2]
    assert bins[".9"] == 1 + sum(1 for i in range(7, 30) if 0.5 + i / 60 >= 0.9)


def test_queue_views_show_only_what_can_be_used(client):
    page = client.get("/queue", params={"order": "score"}).text
    assert "Close selected" in page and 'placeholder="e.g. 2013-09-01T06:00"' in page
    assert "0.9999995" in page  # not 1.000
    closed = client.get("/queue", params={"status": "closed"}).text
    assert "No alerts match" in closed and "Close selected" not in closed
