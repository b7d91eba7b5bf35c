"""Every documented query, path, form and body parameter of the desk's pages and API, fed
hostile values (huge, negative, NaN, extreme dates and offsets, SQL and HTML fragments, control
characters, overlong) on real SQLite and PostgreSQL: never a 5xx, and a 400 names the parameter."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from desk import auth
from desk.app import create_app
from desk.auth import LoginLimiter
from store.db import connect
from tests.desk_fixtures import CHEAP_HASHER, add_users, login, score_cards, seed


def cursor(*key: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


SCRIPT = '<script>alert("x")</script>'
#: One or two of each class of hostile value (each parameter gets all of them).
HOSTILE = [
    "", "-1", "1.5", "2147483648", str(2**63), "9" * 400, "1e309", "nan", "-inf", "²",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2013-09-02T25:00", "1e400h",
    "' OR 1=1 --", SCRIPT, "a\x00b", "tx\n", "x" * 5000, "%00", "all",
    cursor(1e308, "tx", 2**63), cursor(0, "a\x00", 1), cursor(0, "x" * 200, 1),
    cursor("a", "b", "c"), cursor(-1e300, "tx-0001", 2**31),
]
#: The same classes as JSON values (bodies).
JSON_VALUES = [2**63, 10**400, 1.5, float("nan"), float("inf"), -1, True, None, "x" * 5000,
               "a\x00b", "<b>", "' OR 1=1 --", "2147483648", [], {}]
QUERY_PARAMS = ["status", "order", "min_score", "max_score", "min_amount", "max_amount",
                "since", "until", "model_version", "assignee", "label", "limit", "cursor"]


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    monkeypatch.setattr(auth, "_DUMMY_HASH", CHEAP_HASHER.hash("dummy"))


@pytest.fixture
def ada(db_url):
    engine = connect(db_url)
    seed(engine, n_alerts=5, n_genuine=1)
    score_cards(engine, [("k-1", "card-1", 0.9, 10.0), ("k-2", "card-1", 0.8, 5.0)])  # case 1
    passwords = add_users(engine)
    app = create_app(engine, secret="fuzz-secret-of-enough-length",
                     limiter=LoginLimiter(max_failures=10**6))
    client = TestClient(app, raise_server_exceptions=False)
    client.headers["X-CSRF-Token"] = login(client, "ada", passwords["ada"])
    yield client
    engine.dispose()


def check(response, name: str) -> None:
    """No 5xx; a 400 names the parameter ``name``."""
    what = f"{response.request.method} {response.request.url} -> {response.status_code}"
    assert response.status_code < 500, what + " " + response.text[:300]
    if response.status_code == 400:
        text = response.text
        if response.headers.get("content-type", "").startswith("application/json"):
            text = response.json()["detail"]
        assert name in text, what + " " + text[:300]


PATH_PARAMS = {"model_version", "transaction_id", "action", "token_id", "name", "case_id"}
CASE_QUERY_PARAMS = ["status", "assignee", "limit", "cursor"]


def test_every_documented_parameter_is_fuzzed(ada):
    """The API's OpenAPI document lists no query or path parameter this module leaves out."""
    documented = {
        p["name"]
        for item in ada.app.openapi()["paths"].values()
        for op in item.values()
        for p in op.get("parameters", [])
    }
    assert documented <= {*QUERY_PARAMS, "mature_after", *PATH_PARAMS}, documented


def test_query_parameters_never_5xx(ada):
    for path in ("/api/alerts", "/queue"):
        for name in QUERY_PARAMS:
            for value in HOSTILE:
                check(ada.get(path, params={name: value}), name)
    # /cards parses its query as /api/cases does (desk.cases.parse_case_filter): its own page
    # is fuzzed on two of them, to keep the suite's time
    for path, names in (("/api/cases", CASE_QUERY_PARAMS), ("/cards", ["status", "cursor"])):
        for name in names:
            for value in HOSTILE:
                check(ada.get(path, params={name: value}), name)
    for value in HOSTILE:
        check(ada.get("/api/dashboard", params={"mature_after": value}), "mature_after")
        check(ada.get("/queue/new", params={"after": value}), "after")
        check(ada.get("/queue/new", params={"status": value}), "status")
        for page in ("/queue", "/alerts/1/tx-0001", "/login", "/cards", "/cases/1"):
            assert ada.get(page, params={"msg": value, "next": value, "error": value}
                           ).status_code < 500
        assert "<script>alert" not in ada.get("/queue", params={"msg": SCRIPT}).text


def test_path_parameters_never_5xx(ada):
    for value in HOSTILE:
        v = quote(value, safe="")
        check(ada.get(f"/api/alerts/{v}/tx-0001"), "model_version")
        check(ada.get(f"/api/alerts/1/{v}"), "transaction_id")
        check(ada.get(f"/alerts/{v}/tx-0001"), "model_version")
        check(ada.get(f"/alerts/1/{v}"), "transaction_id")
        check(ada.post(f"/api/alerts/{v}/tx-0001/claim"), "model_version")
        check(ada.post(f"/api/alerts/1/{v}/release"), "transaction_id")
        check(ada.post(f"/api/alerts/1/tx-0002/{v}"), "action")
        check(ada.post(f"/alerts/{v}/tx-0001/claim"), "model_version")
        check(ada.post(f"/alerts/1/{v}/release"), "transaction_id")
        check(ada.post(f"/alerts/1/tx-0002/{v}"), "action")
        check(ada.delete(f"/api/tokens/{v}"), "token_id")
        check(ada.get(f"/api/cases/{v}"), "case_id")
        check(ada.get(f"/cases/{v}"), "case_id")
        check(ada.post(f"/api/cases/{v}/claim"), "case_id")
        check(ada.post(f"/api/cases/1/{v}"), "action")
        check(ada.post(f"/cases/{v}/claim"), "case_id")
        check(ada.post(f"/cases/1/{v}"), "action")
        check(ada.patch(f"/api/users/{v}", json={"role": "viewer"}), "name")


def raw_json(client: TestClient, path: str, body: object):
    """POST ``body`` as JSON as Python writes it (NaN and Infinity included)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def test_body_and_form_fields_never_5xx(ada):
    for value in JSON_VALUES:
        for field in ("assignee", "note", "revision", "disposition"):
            body = {"disposition": "inconclusive", "assignee": "bob", field: value}
            check(raw_json(ada, "/api/alerts/1/tx-0003/assign", body), field)
            body = {"disposition": "inconclusive", field: value}
            check(raw_json(ada, "/api/alerts/1/tx-0003/disposition", body), field)
        for field in ("transaction_id", "model_version"):
            ref = {"transaction_id": "tx-0004", "model_version": 1, field: value}
            check(raw_json(ada, "/api/alerts/bulk", {"action": "claim", "alerts": [ref]}), field)
        check(raw_json(ada, "/api/alerts/bulk", {"action": value, "alerts": []}), "a")
        for field in ("assignee", "note", "revision", "disposition", "transaction_ids"):
            body = {"disposition": "inconclusive", "revision": 99, field: value}
            check(raw_json(ada, "/api/cases/1/disposition", body), field)
        check(raw_json(ada, "/api/cases/1/disposition",
                       {"disposition": "inconclusive", "revision": 99,
                        "transaction_ids": [value]}), "transaction_ids")
        for field in ("id", "revision"):
            ref = {"id": 1, "revision": 99, field: value}
            check(raw_json(ada, "/api/cases/bulk", {"action": "claim", "cases": [ref]}), field)
        check(raw_json(ada, "/api/cases/bulk", {"action": value, "cases": []}), "a")
        check(raw_json(ada, "/api/tokens", {"name": value}), "name")
        check(raw_json(ada, "/api/users", {"name": value, "role": "viewer"}), "name")
        check(raw_json(ada, "/api/users", {"name": "zz", "role": value}), "role")
        check(raw_json(ada, "/api/users/vera", {"disabled": value}), "disabled")
    anonymous = TestClient(ada.app, raise_server_exceptions=False)
    forger = TestClient(ada.app, raise_server_exceptions=False, cookies=dict(ada.cookies))
    for token in ("é".encode("latin-1"), b"\xff" * 300, b"' OR 1=1 --"):  # headers are bytes
        got = ada.post("/api/alerts/1/tx-0005/claim", headers={"X-CSRF-Token": token})
        assert got.status_code == 403, (token, got.status_code)
    for value in HOSTILE:
        form = {"csrf_token": ada.headers["X-CSRF-Token"]}
        forged = forger.post("/alerts/1/tx-0005/claim", data={"csrf_token": value})
        assert forged.status_code == 403, (value, forged.status_code)
        for field in ("assignee", "note", "revision"):
            got = ada.post("/alerts/1/tx-0004/assign", data={**form, "assignee": "bob",
                                                             field: value})
            check(got, field)
        for field in ("sel", "disposition", "note", "back"):
            data = {**form, "sel": ["1:tx-0005"], "disposition": "inconclusive", field: value}
            assert ada.post("/queue/bulk", data=data).status_code < 500
        for field in ("sel", "action"):  # disposition, note, back: as the alert queue's
            data = {**form, "sel": ["1:99"], "disposition": "inconclusive", field: value}
            assert ada.post("/cards/bulk", data=data).status_code < 500
        for field in ("revision", "mark"):
            data = {**form, "revision": "99", "marks": "1", "mark": ["k-1"],
                    "disposition": "inconclusive", field: value}
            check(ada.post("/cases/1/disposition", data=data), field)
        for field in ("username", "password", "next"):
            data = {"username": "nobody", "password": "x", field: value}
            got = anonymous.post("/login", data=data, follow_redirects=False)
            assert got.status_code < 500, (data, got.status_code)
