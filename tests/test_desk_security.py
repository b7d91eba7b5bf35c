"""The desk's limits and sessions under attack, on real SQLite and PostgreSQL: bodies capped
whatever their framing, sessions and tokens that end server-side, a colleague's claim respected
on every path, and analyst label ids that never collide."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from desk import auth
from desk.app import MAX_BODY, create_app
from desk.auth import LoginLimiter
from schemas.events import MAX_ID_LENGTH
from store.db import connect
from store.tables import alerts, labels
from tests.desk_fixtures import CHEAP_HASHER, SECRET, add_users, client_for, seed


@pytest.fixture
def desk(db_url, monkeypatch):
    """A desk of 12 alerts and the fixtures' four users (cheap password hashes)."""
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    engine = connect(db_url)
    seed(engine, n_alerts=12, n_genuine=2)
    yield engine, create_app(engine, secret=SECRET), add_users(engine)
    engine.dispose()


def chunks(total: int, size: int = 64 * 1024):
    """A body of ``total`` bytes sent as ``Transfer-Encoding: chunked`` (no Content-Length)."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


def test_chunked_bodies_are_capped_before_authentication(desk):
    engine, app, pw = desk
    anonymous = TestClient(app, headers={"Authorization": "Bearer fsd_bogus"})
    got = anonymous.post(
        "/api/alerts/bulk",
        content=chunks(MAX_BODY + 1),
        headers={"content-type": "application/json"},
    )
    assert got.status_code == 413 and "body over" in got.json()["detail"]
    page = TestClient(app).post(
        "/login",
        content=chunks(2 * MAX_BODY),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 413
    lying = TestClient(app).post(
        "/login", content=b"x" * 10, headers={"content-length": "abc"}
    )
    assert lying.status_code in (400, 413)
    ann = client_for(app, pw, "ann")
    note = b'{"disposition": "false_positive", "note": "' + b"n" * (8 * MAX_BODY) + b'"}'
    big = ann.post(
        "/api/alerts/1/tx-0001/disposition",
        content=(note[i : i + 65536] for i in range(0, len(note), 65536)),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    assert ann.get("/api/alerts/1/tx-0001").json()["alert"]["status"] == "open"
    small = ann.post(
        "/api/alerts/1/tx-0001/disposition",
        content=chunks(10, 4),
        headers={"content-type": "application/json"},
    )
    assert small.status_code == 400  # read whole (under the cap), then refused as not JSON


def cookie_of(client: TestClient) -> str:
    return client.cookies["fraudstream_desk"]


def test_logout_ends_every_session_issued_before(desk):
    _, app, pw = desk
    ann = client_for(app, pw, "ann")
    other = client_for(app, pw, "ann")  # a second browser
    captured = cookie_of(ann)
    assert ann.get("/api/me").status_code == 200
    assert ann.post("/logout", follow_redirects=False).status_code == 303
    replay = TestClient(app, cookies={"fraudstream_desk": captured})
    assert replay.get("/api/me").status_code == 401
    assert replay.get("/queue", follow_redirects=False).status_code == 303  # to /login
    assert other.get("/api/me").status_code == 401
    again = client_for(app, pw, "ann")  # a fresh login works
    assert again.get("/api/me").json()["name"] == "ann"


@pytest.mark.parametrize("change", ["disable", "role", "reset"])
def test_disable_role_change_and_reset_end_sessions_and_tokens_for_good(desk, change):
    engine, app, pw = desk
    bob = client_for(app, pw, "bob")
    _, token = auth.add_token(engine, "bob")
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert bearer.get("/api/me").status_code == 200 and bob.get("/api/me").status_code == 200
    ada = client_for(app, pw, "ada")
    body = {"disable": {"disabled": True}, "role": {"role": "viewer"}}.get(
        change, {"reset_password": True}
    )
    answer = ada.patch("/api/users/bob", json=body)
    assert answer.status_code == 200
    if change == "disable":
        assert ada.patch("/api/users/bob", json={"disabled": False}).status_code == 200
    assert bob.get("/api/me").status_code == 401
    assert bearer.get("/api/me").status_code == 401
    assert TestClient(app, cookies={"fraudstream_desk": cookie_of(bob)}).get(
        "/api/me"
    ).status_code == 401
    if change == "reset":
        new = answer.json()["password"]
        assert auth.authenticate(engine, "bob", pw["bob"]) is None
        assert client_for(app, {"bob": new}, "bob").get("/api/me").status_code == 200
    else:
        assert client_for(app, pw, "bob").get("/api/me").status_code == 200


def test_a_colleagues_claim_holds_on_every_path(desk):
    _, app, pw = desk
    ann, bob, ada = (client_for(app, pw, n) for n in ("ann", "bob", "ada"))
    for tx in ("tx-0002", "tx-0003", "tx-0004"):
        assert bob.post(f"/api/alerts/1/{tx}/claim").status_code == 200
    took = ann.post("/api/alerts/1/tx-0002/assign", json={"assignee": "ann"})
    assert took.status_code == 409 and "bob" in took.json()["detail"]
    closed = ann.post("/api/alerts/1/tx-0002/disposition", json={"disposition": "false_positive"})
    assert closed.status_code == 409
    page = ann.post(
        "/alerts/1/tx-0003/assign",
        data={"assignee": "ann", "csrf_token": ann.headers["X-CSRF-Token"]},
    )
    assert page.status_code == 409 and "bob" in page.text
    refs = [{"transaction_id": "tx-0004", "model_version": 1}]
    body = {"action": "assign", "assignee": "ann", "alerts": refs}
    bulk = ann.post("/api/alerts/bulk", json=body)
    assert bulk.status_code == 409
    form = ann.post(
        "/queue/bulk",
        data={"sel": ["1:tx-0004"], "disposition": "false_positive",
              "csrf_token": ann.headers["X-CSRF-Token"]},
    )
    assert "nothing changed" in form.text
    for tx in ("tx-0002", "tx-0003", "tx-0004"):
        assert ann.get(f"/api/alerts/1/{tx}").json()["alert"]["assignee"] == "bob"
    handed = bob.post("/api/alerts/1/tx-0002/assign", json={"assignee": "ann"})  # the holder
    assert handed.status_code == 200 and handed.json()["assignee"] == "ann"
    admin = ada.post("/api/alerts/1/tx-0003/assign", json={"assignee": "ann"})  # an admin
    assert admin.status_code == 200
    open_one = ann.post("/api/alerts/1/tx-0005/assign", json={"assignee": "bob"})  # unclaimed
    assert open_one.status_code == 200


def test_long_transaction_ids_sharing_a_prefix_keep_both_verdicts(desk):
    engine, app, pw = desk
    stem = "L" * (MAX_ID_LENGTH - 5)
    ids = [stem + "AAAAA", stem + "BBBBB", "#" + "x" * 20]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for i, tx in enumerate(ids):
            conn.execute(insert(alerts).values(
                transaction_id=tx, model_version=1, score=0.9, threshold=0.5, amount=1.0,
                time_s=1.0 + i, created_at=now, source_topic="transactions", source_partition=0,
                source_offset=100 + i,
            ))
    ann = client_for(app, pw, "ann")
    for tx in ids:
        done = ann.post(
            f"/api/alerts/1/{quote(tx, safe='')}/disposition",
            json={"disposition": "confirmed_fraud"},
        )
        assert done.status_code == 200, done.text
    with engine.connect() as conn:
        rows = conn.execute(select(labels.c.transaction_id, labels.c.label_id)).all()
    assert sorted(r.transaction_id for r in rows) == sorted(ids)
    assert len({r.label_id for r in rows}) == 3
    assert all(len(r.label_id) <= MAX_ID_LENGTH for r in rows)


def test_login_limiter_memory_is_bounded_by_one_window():
    limiter = LoginLimiter(max_failures=5, window_s=300.0)
    for i in range(20_000):  # a name and an address per attempt, 10 attempts a second
        limiter.failed([f"user:n{i}", f"ip:10.0.{i // 256}.{i % 256}"], now=i * 0.1)
    assert limiter.held() <= 4 * 3000 * 2  # ~3,000 attempts per window, 2 keys each
    for _ in range(5):
        limiter.failed(["user:ann"], now=2000.0)
    assert limiter.blocked(["user:ann"], now=2000.0)
    assert not limiter.blocked(["user:ann"], now=2400.0)
