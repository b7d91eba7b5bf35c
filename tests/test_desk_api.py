"""The desk's REST API and rules on real SQLite and PostgreSQL: filters, keyset pagination,
claim / disposition / bulk, the role matrix, CSRF, bad input, races, and dispositions showing up
as ``analyst`` labels and in the matured counts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from desk import auth
from desk.app import create_app
from desk.auth import LoginLimiter, User
from desk.work import AlertKey, WorkError, act, transition
from store.counts import matured_counts
from store.db import connect
from store.tables import labels
from tests.desk_fixtures import (
    SECRET,
    add_users,
    cheap_hashes,  # noqa: F401  (autouse)
    client_for,
    login,
    seed,
)


@pytest.fixture
def desk(db_url):
    engine = connect(db_url)
    seed(engine)
    passwords = add_users(engine)
    app = create_app(engine, secret=SECRET, limiter=LoginLimiter(max_failures=3))
    yield engine, app, passwords
    engine.dispose()


def test_migration_creates_desk_tables_and_queue_indexes(db_url):
    engine = connect(db_url)
    inspector = inspect(engine)
    assert {"desk_users", "desk_tokens", "desk_audit"} <= set(inspector.get_table_names())
    names = {ix["name"] for ix in inspector.get_indexes("alerts")}
    assert {"ix_alerts_status_time", "ix_alerts_status_score", "ix_alerts_assignee"} <= names
    engine.dispose()


def test_migration_0005_downgrades_and_upgrades(tmp_path):
    from alembic import command
    from alembic.config import Config

    from store.db import MIGRATIONS_DIR

    engine = connect(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert "status" not in {c["name"] for c in inspect(engine).get_columns("alerts")}
    engine.dispose()
    engine = connect(f"sqlite:///{tmp_path / 'm.db'}")
    assert "status" in {c["name"] for c in inspect(engine).get_columns("alerts")}
    engine.dispose()


def test_anonymous_and_viewer_page_forms_change_nothing(desk):
    engine, app, pw = desk
    anonymous = TestClient(app)
    assert anonymous.post("/api/tokens", json={"name": "x"}).status_code == 401
    assert anonymous.delete("/api/tokens/1").status_code == 401
    sent = anonymous.post("/alerts/1/tx-0001/claim", follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"].startswith("/login")
    vera = TestClient(app)
    csrf = login(vera, "vera", pw["vera"])
    refused = vera.post("/alerts/1/tx-0001/claim", data={"csrf_token": csrf})
    assert refused.status_code == 403
    bulk = vera.post(
        "/queue/bulk",
        data={"csrf_token": csrf, "sel": ["1:tx-0001"], "disposition": "false_positive"},
    )
    assert bulk.status_code == 200 and "nothing changed" in bulk.text
    detail = client_for(app, pw, "ann").get("/api/alerts/1/tx-0001").json()
    assert detail["alert"]["status"] == "open" and detail["audit"] == []


def test_filters_and_keyset_pagination(desk):
    _, app, pw = desk
    c = client_for(app, pw, "vera")
    got = c.get("/api/alerts", params={"order": "score", "limit": 7})
    assert got.status_code == 200
    seen, page = [], got.json()
    while True:
        seen += [r["transaction_id"] for r in page["items"]]
        if not page["next_cursor"]:
            break
        page = c.get(
            "/api/alerts", params={"order": "score", "limit": 7, "cursor": page["next_cursor"]}
        ).json()
    assert len(seen) == len(set(seen)) == 30
    assert seen[0] == "tx-0029"  # highest score first
    newest = c.get("/api/alerts", params={"limit": 3}).json()["items"]
    assert [r["transaction_id"] for r in newest] == ["tx-0029", "tx-0028", "tx-0027"]
    f = c.get(
        "/api/alerts",
        params={
            "min_score": 0.9,
            "max_amount": 290,
            "status": "all",
            "since": "2013-09-01T00:10",
            "model_version": 1,
        },
    ).json()
    assert {r["transaction_id"] for r in f["items"]} == {
        f"tx-{i:04d}" for i in (24, 25, 26, 27, 28)
    }
    assert all(r["score"] >= 0.9 and r["amount"] <= 290 for r in f["items"])


@pytest.mark.parametrize(
    "params",
    [
        {"min_score": "abc"},
        {"min_score": "2"},
        {"status": "weird"},
        {"order": "random"},
        {"since": "yesterday"},
        {"limit": "0"},
        {"limit": "100000"},
        {"cursor": "!!notacursor"},
        {"min_amount": "5", "max_amount": "1"},
        {"model_version": "1.5"},
    ],
)
def test_malformed_filters_are_400_with_a_reason(desk, params):
    _, app, pw = desk
    got = client_for(app, pw, "vera").get("/api/alerts", params=params)
    assert got.status_code == 400 and got.json()["detail"]


def test_detail_and_unknown_ids(desk):
    _, app, pw = desk
    c = client_for(app, pw, "vera")
    got = c.get("/api/alerts/1/tx-0003").json()
    assert got["alert"]["explanation"][0]["feature"] == "V14"
    assert got["alert"]["source_offset"] == 3 and got["labels"] == [] and got["audit"] == []
    assert c.get("/api/alerts/1/nope").status_code == 404
    assert c.get("/api/alerts/7/tx-0003").status_code == 404
    assert c.get("/alerts/1/nope").status_code == 404
    a = client_for(app, pw, "ann")
    assert a.post("/api/alerts/1/nope/claim").status_code == 404
    assert a.post("/api/alerts/1/tx-0003/explode").json()["detail"].startswith("action:")


STATE_CHANGES = [
    ("post", "/api/alerts/1/tx-0001/claim", None),
    ("post", "/api/alerts/1/tx-0001/release", None),
    ("post", "/api/alerts/1/tx-0001/assign", {"assignee": "bob"}),
    ("post", "/api/alerts/1/tx-0001/disposition", {"disposition": "inconclusive"}),
    (
        "post",
        "/api/alerts/bulk",
        {
            "alerts": [{"transaction_id": "tx-0001", "model_version": 1}],
            "disposition": "inconclusive",
        },
    ),
    ("post", "/api/users", {"name": "zed", "role": "viewer"}),
    ("patch", "/api/users/vera", {"role": "viewer"}),
]


@pytest.mark.parametrize("method,path,body", STATE_CHANGES)
def test_role_matrix(desk, method, path, body):
    engine, app, pw = desk
    anonymous = TestClient(app)
    assert getattr(anonymous, method)(path, json=body).status_code == 401
    allowed = {"viewer": False, "analyst": "/api/users" not in path, "admin": True}
    for name, role in (("vera", "viewer"), ("ann", "analyst")):
        got = getattr(client_for(app, pw, name), method)(path, json=body)
        if allowed[role]:
            assert got.status_code in (200, 409), (name, got.text)
        else:
            assert got.status_code == 403, (name, got.text)
    _, token = auth.add_token(engine, "vera")
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert getattr(bearer, method)(path, json=body).status_code == 403
    assert bearer.get("/api/alerts").status_code == 200


def test_csrf_is_required_for_cookie_sessions(desk):
    _, app, pw = desk
    c = TestClient(app)
    csrf = login(c, "ann", pw["ann"])
    assert c.post("/api/alerts/1/tx-0002/claim").status_code == 403
    assert (
        c.post("/api/alerts/1/tx-0002/claim", headers={"X-CSRF-Token": "forged"}).status_code == 403
    )
    page_form = c.post("/alerts/1/tx-0002/claim", data={"csrf_token": "forged"})
    assert page_form.status_code == 403
    cross = c.post(
        "/api/alerts/1/tx-0002/claim",
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert c.post("/api/alerts/1/tx-0002/claim", headers={"X-CSRF-Token": csrf}).status_code == 200
    ok = c.post("/alerts/1/tx-0002/release", data={"csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303


def test_tokens_are_hashed_and_revocable(desk):
    engine, app, pw = desk
    token_id, token = auth.add_token(engine, "ann")
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_sha256 FROM desk_tokens").scalar()
    assert token not in stored and len(stored) == 64
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert bearer.post("/api/alerts/1/tx-0004/claim").status_code == 200  # no CSRF for tokens
    assert bearer.delete(f"/api/tokens/{token_id}").status_code == 200
    assert bearer.get("/api/me").status_code == 401
    bad = TestClient(app, headers={"Authorization": "Bearer fsd_guess"})
    assert bad.get("/api/me").status_code == 401


def test_login_rate_limit_and_security_headers(desk):
    _, app, pw = desk
    c = TestClient(app)
    for _ in range(3):
        assert c.post("/login", data={"username": "ann", "password": "x"}).status_code == 401
    blocked = c.post("/login", data={"username": "ann", "password": pw["ann"]})
    assert blocked.status_code == 429
    page = c.get("/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    app.state.limiter.succeeded(["ip:testclient"])  # another address
    raw = (
        TestClient(app)
        .post("/login", data={"username": "bob", "password": pw["bob"]}, follow_redirects=False)
        .headers["set-cookie"]
        .lower()
    )
    assert "httponly" in raw and "samesite=strict" in raw and "fraudstream_desk=" in raw


def test_claim_disposition_label_audit_and_counts(desk):
    engine, app, pw = desk
    ann, bob = client_for(app, pw, "ann"), client_for(app, pw, "bob")
    before = matured_counts(engine, timedelta(hours=48)).rows[0]
    assert ann.post("/api/alerts/1/tx-0005/claim").json()["assignee"] == "ann"
    taken = bob.post("/api/alerts/1/tx-0005/claim")
    assert taken.status_code == 409 and "ann" in taken.json()["detail"]
    assert (
        bob.post(
            "/api/alerts/1/tx-0005/disposition", json={"disposition": "false_positive"}
        ).status_code
        == 409
    )
    done = ann.post(
        "/api/alerts/1/tx-0005/disposition",
        json={"disposition": "confirmed_fraud", "note": "customer confirmed"},
    )
    assert done.status_code == 200 and done.json()["status"] == "closed"
    again = bob.post("/api/alerts/1/tx-0005/claim")
    assert again.status_code == 409 and "closed" in again.json()["detail"]
    with engine.connect() as conn:
        rows = conn.execute(select(labels).where(labels.c.transaction_id == "tx-0005")).all()
    assert [(r.is_fraud, r.source) for r in rows] == [(1, "analyst")]
    after = matured_counts(engine, timedelta(hours=48)).rows[0]
    assert (after.tp, after.labelled) == (before.tp + 1, before.labelled + 1)
    ann.post("/api/alerts/1/tx-0006/disposition", json={"disposition": "false_positive"})
    assert matured_counts(engine, timedelta(hours=48)).rows[0].fp >= 1
    ann.post("/api/alerts/1/tx-0007/disposition", json={"disposition": "inconclusive"})
    with engine.connect() as conn:
        assert not conn.execute(select(labels).where(labels.c.transaction_id == "tx-0007")).all()
    detail = ann.get("/api/alerts/1/tx-0005").json()
    assert [e["action"] for e in detail["audit"]] == ["claim", "disposition"]
    assert detail["audit"][1]["old"]["status"] == "claimed"
    assert detail["audit"][1]["new"]["status"] == "closed"
    assert detail["current_label"] == "fraud"
    closed = ann.get("/api/alerts", params={"status": "closed"}).json()["items"]
    assert {r["transaction_id"] for r in closed} == {"tx-0005", "tx-0006", "tx-0007"}


def test_oversized_note_and_stale_revision(desk):
    _, app, pw = desk
    ann = client_for(app, pw, "ann")
    long = ann.post(
        "/api/alerts/1/tx-0008/disposition",
        json={"disposition": "false_positive", "note": "x" * 1001},
    )
    assert long.status_code == 400 and "note too long" in long.json()["detail"]
    stale = ann.post("/api/alerts/1/tx-0008/claim", json={"revision": 5})
    assert stale.status_code == 409
    assert ann.get("/api/alerts/1/tx-0008").json()["alert"]["status"] == "open"
    huge = ann.post(
        "/api/alerts/1/tx-0008/disposition",
        content=b"x" * 300_000,
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413


def test_bulk_is_all_or_nothing(desk):
    engine, app, pw = desk
    ann = client_for(app, pw, "ann")
    ann.post("/api/alerts/1/tx-0011/disposition", json={"disposition": "inconclusive"})
    fixed = [{"transaction_id": f"tx-{i:04d}", "model_version": 1} for i in (10, 11, 12)]
    refused = ann.post("/api/alerts/bulk", json={"alerts": fixed, "disposition": "false_positive"})
    assert refused.status_code == 409
    assert ann.get("/api/alerts/1/tx-0010").json()["alert"]["status"] == "open"
    ok = ann.post(
        "/api/alerts/bulk",
        json={"alerts": [fixed[0], fixed[2]], "disposition": "false_positive", "note": "batch"},
    )
    assert ok.status_code == 200 and len(ok.json()["alerts"]) == 2
    with engine.connect() as conn:
        n = conn.execute(select(labels).where(labels.c.source == "analyst")).all()
    assert len(n) == 2
    assert ann.post("/api/alerts/bulk", json={"alerts": [], "disposition": "x"}).status_code == 400


def test_two_analysts_race_one_wins_one_conflict(desk):
    engine, _, _ = desk
    ann, bob = User(0, "ann", "analyst"), User(0, "bob", "analyst")
    barrier, results = threading.Barrier(2), {}

    def go(user, disposition):
        barrier.wait()
        try:
            act(engine, [AlertKey("tx-0013", 1)], "disposition", user, disposition=disposition)
            results[user.name] = "ok"
        except WorkError as exc:
            results[user.name] = exc.status

    threads = [
        threading.Thread(target=go, args=(u, d))
        for u, d in ((ann, "confirmed_fraud"), (bob, "false_positive"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values(), key=str) == [409, "ok"]
    with engine.connect() as conn:
        rows = conn.execute(select(labels).where(labels.c.transaction_id == "tx-0013")).all()
    assert len(rows) == 1  # the loser wrote nothing


def test_transition_rules_are_pure():
    state = {
        "status": "open",
        "assignee": None,
        "disposition": None,
        "disposition_note": None,
        "revision": 0,
    }
    viewer, ann = User(1, "v", "viewer"), User(2, "ann", "analyst")
    with pytest.raises(WorkError) as refused:
        transition(state, "claim", viewer)
    assert refused.value.status == 403
    claimed = transition(state, "claim", ann)
    assert (claimed["status"], claimed["assignee"], claimed["revision"]) == ("claimed", "ann", 1)
    with pytest.raises(WorkError):
        transition(state, "release", ann)
    closed = transition(claimed, "disposition", ann, disposition="false_positive")
    assert closed["status"] == "closed"
    with pytest.raises(WorkError) as twice:
        transition(closed, "disposition", ann, disposition="false_positive")
    assert twice.value.status == 409


def test_users_api_and_dashboard(desk):
    _, app, pw = desk
    ada = client_for(app, pw, "ada")
    made = ada.post("/api/users", json={"name": "zed", "role": "analyst"})
    assert made.status_code == 200 and made.json()["password"]
    assert ada.post("/api/users", json={"name": "zed", "role": "analyst"}).status_code == 409
    assert ada.patch("/api/users/zed", json={"disabled": True}).status_code == 200
    assert (
        TestClient(app)
        .post("/login", data={"username": "zed", "password": made.json()["password"]})
        .status_code
        == 401
    )
    board = ada.get("/api/dashboard").json()
    assert board["queue"]["by_status"]["open"] == 30
    assert sum(n for _, n in board["scores"]) == 30
    assert sum(n for _, n in board["alerts_per_hour"]) == 30
    assert ada.get("/api/dashboard", params={"mature_after": "soon"}).status_code == 400
    for page in ("/queue", "/dashboard", "/alerts/1/tx-0001", "/queue?min_score=zz"):
        got = ada.get(page)
        assert got.status_code in (200, 400) and "<html" in got.text
    assert TestClient(app).get("/queue", follow_redirects=False).status_code == 303
    newer = ada.get("/queue/new", params={"after": 60.0 * 27, "status": "open"})
    assert "2 new alerts" in newer.text  # tx-0028, tx-0029: what the queue's poll shows
    assert ada.get("/queue/new", params={"after": 1e9}).text == ""
    ada.post("/api/alerts/1/tx-0001/claim")
    scraped = TestClient(app).get("/metrics").text
    assert 'fraudstream_desk_changes_total{action="claim"} 1.0' in scraped
    assert "fraudstream_desk_request_duration_seconds_bucket" in scraped
