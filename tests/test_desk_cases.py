"""The card queue (issue 21 item 2) on real SQLite and PostgreSQL: a keyed card's alerts gather
in one case (written by the keyed scorer's own batch write) until an analyst closes it; the
queue is ordered by the card's highest score; a case's disposition labels the transactions the
analyst marks, in one database transaction with the audit trail; claims, races, late alerts and
roles follow the alert rules."""

from __future__ import annotations

import re
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from desk.app import create_app
from desk.auth import LoginLimiter, User
from desk.case_work import CaseRef, act_on_cases
from desk.work import WorkError
from store.db import connect
from store.tables import alerts, desk_audit, labels
from tests.desk_fixtures import (
    SECRET,
    add_users,
    cheap_hashes,  # noqa: F401  (autouse)
    client_for,
    label,
    login,
    score_cards,
    seed,
)


@pytest.fixture
def desk(db_url):
    engine = connect(db_url)
    seed(engine, n_alerts=3, n_genuine=0)  # ULB (v1) alerts: no card, no case
    score_cards(engine, [("k-a1", "card-a", 0.7, 10.0), ("k-b1", "card-b", 0.95, 5.0),
                         ("k-a2", "card-a", 0.9, 20.0), ("k-c1", "card-c", 0.6, 1.0)])
    passwords = add_users(engine)
    app = create_app(engine, secret=SECRET, limiter=LoginLimiter(max_failures=3))
    yield engine, app, passwords
    engine.dispose()


def case_of(client: TestClient, card: str, status: str = "open") -> dict:
    items = client.get("/api/cases", params={"status": status}).json()["items"]
    found = [c for c in items if c["card_id"] == card]
    assert len(found) == 1, items
    return client.get(f"/api/cases/{found[0]['id']}").json()


def analyst_labels(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(labels.c.transaction_id, labels.c.is_fraud)
                                 .where(labels.c.source == "analyst")).all())


def test_a_cards_alerts_gather_in_one_case_until_it_is_closed(desk):
    engine, app, pw = desk
    vera = client_for(app, pw, "vera")
    page = vera.get("/api/cases", params={"limit": 2}).json()
    assert [c["card_id"] for c in page["items"]] == ["card-b", "card-a"]  # highest score first
    a = page["items"][1]
    assert (a["n_alerts"], a["amount"], a["max_score"], a["status"]) == (2, 30.0, 0.9, "open")
    assert a["waited_s"] >= 0 and a["revision"] == 0
    rest = vera.get("/api/cases", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [c["card_id"] for c in rest["items"]] == ["card-c"] and rest["next_cursor"] is None
    with engine.connect() as conn:  # ULB (v1) alerts have no card and no case
        assert conn.execute(select(alerts.c.transaction_id).where(alerts.c.case_id.is_(None))
                            ).scalars().all() == ["tx-0000", "tx-0001", "tx-0002"]
    # a re-delivered batch attaches nothing twice; the card's next alert joins its open case
    score_cards(engine, [("k-a1", "card-a", 0.7, 10.0), ("k-a2", "card-a", 0.9, 20.0)])
    score_cards(engine, [("k-a3", "card-a", 0.99, 7.0)], start_s=90_000.0)
    a = case_of(vera, "card-a")
    assert (a["case"]["n_alerts"], a["case"]["amount"], a["case"]["max_score"]) == (3, 37.0, 0.99)
    assert a["case"]["revision"] == 1
    assert [x["transaction_id"] for x in a["alerts"]] == ["k-a1", "k-a2", "k-a3"]
    ann = client_for(app, pw, "ann")
    closed = ann.post(f"/api/cases/{a['case']['id']}/disposition",
                      json={"disposition": "confirmed_fraud", "note": "card stolen",
                            "revision": 1})
    assert closed.status_code == 200, closed.text
    assert analyst_labels(engine) == {"k-a1": 1, "k-a2": 1, "k-a3": 1}
    # once closed, the card's next alert opens a new case
    score_cards(engine, [("k-a4", "card-a", 0.8, 3.0)], start_s=95_000.0)
    new = case_of(vera, "card-a")
    assert new["case"]["id"] != a["case"]["id"] and new["case"]["n_alerts"] == 1
    old = case_of(vera, "card-a", status="closed")
    assert old["case"]["disposition"] == "confirmed_fraud" and old["case"]["n_alerts"] == 3
    assert {x["status"] for x in old["alerts"]} == {"closed"}
    assert {x["label"] for x in old["alerts"]} == {"fraud"}


def test_a_partial_disposition_labels_only_the_marked_transactions(desk):
    engine, app, pw = desk
    score_cards(engine, [("k-a3", "card-a", 0.8, 7.0)], start_s=90_000.0)
    ann = client_for(app, pw, "ann")
    case = case_of(ann, "card-a")["case"]
    url = f"/api/cases/{case['id']}/disposition"
    body = {"disposition": "false_positive", "revision": case["revision"]}
    assert ann.post(url, json={"disposition": "false_positive"}).status_code == 400  # revision
    stray = ann.post(url, json={**body, "transaction_ids": ["k-b1"]})
    assert stray.status_code == 400 and "not an open alert of case" in stray.json()["detail"]
    done = ann.post(url, json={**body, "note": "the cardholder's own", "transaction_ids": ["k-a2"]})
    assert done.status_code == 200, done.text
    assert analyst_labels(engine) == {"k-a2": 0}  # the others stay unlabelled
    after = ann.get(f"/api/cases/{case['id']}").json()
    assert after["case"]["status"] == "closed"
    by_tx = {x["transaction_id"]: x for x in after["alerts"]}
    assert by_tx["k-a2"]["disposition"] == "false_positive" and by_tx["k-a2"]["label"] == "genuine"
    assert {by_tx[t]["disposition"] for t in ("k-a1", "k-a3")} == {"inconclusive"}
    assert by_tx["k-a1"]["label"] is None
    with engine.connect() as conn:
        trail = conn.execute(select(desk_audit.c.action, desk_audit.c.transaction_id,
                                    desk_audit.c.new)
                             .where(desk_audit.c.case_id == case["id"])
                             .order_by(desk_audit.c.id)).all()
    assert [(t.action, t.transaction_id) for t in trail] == [
        ("disposition", "k-a1"), ("disposition", "k-a2"), ("disposition", "k-a3"),
        ("case_disposition", None)]
    assert trail[-1].new["marked"] == ["k-a2"]
    assert len(after["audit"]) == 4


def test_two_analysts_race_on_one_case_one_wins_the_other_gets_409(desk):
    engine, app, _ = desk
    ann, bob = User(0, "ann", "analyst"), User(0, "bob", "analyst")
    case_id = case_id_of(engine, "card-a")
    barrier, results = threading.Barrier(2), {}

    def go(user, disposition):
        barrier.wait()
        try:
            act_on_cases(engine, [CaseRef(case_id, 0)], "disposition", user,
                         disposition=disposition)
            results[user.name] = "ok"
        except WorkError as exc:
            results[user.name] = exc.status

    threads = [threading.Thread(target=go, args=(u, d))
               for u, d in ((ann, "confirmed_fraud"), (bob, "false_positive"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values(), key=str) == [409, "ok"]
    assert len(analyst_labels(engine)) == 2  # k-a1, k-a2 once, by the winner only


def case_id_of(engine, card: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(alerts.c.case_id).where(alerts.c.card_id == card)
                                .limit(1)).scalar())


def test_claims_and_a_late_alert_hold_on_cases(desk):
    engine, app, pw = desk
    ann, bob, ada = (client_for(app, pw, n) for n in ("ann", "bob", "ada"))
    case = case_of(ann, "card-a")["case"]
    url = f"/api/cases/{case['id']}"
    assert ann.post(f"{url}/claim").json()["assignee"] == "ann"
    for action in ("claim", "release"):
        refused = bob.post(f"{url}/{action}")
        assert refused.status_code == 409 and "ann" in refused.json()["detail"]
    seen = ann.get(url).json()["case"]["revision"]
    assert bob.post(f"{url}/disposition", json={"disposition": "false_positive",
                                                "revision": seen}).status_code == 409
    # a late alert arrives while ann looks at the case: her close is refused, nothing lost
    score_cards(engine, [("k-a9", "card-a", 0.75, 4.0)], start_s=99_000.0)
    stale = ann.post(f"{url}/disposition", json={"disposition": "confirmed_fraud",
                                                 "revision": seen})
    assert stale.status_code == 409 and "changed since you loaded it" in stale.json()["detail"]
    assert analyst_labels(engine) == {}
    fresh = ann.get(url).json()
    assert fresh["case"]["status"] == "claimed" and fresh["case"]["n_alerts"] == 3
    # an alert of a case claimed by a colleague in the alert queue holds too
    assert bob.post("/api/alerts/1/k-b1/claim").status_code == 200
    others = case_of(bob, "card-b")["case"]
    held = ann.post(f"/api/cases/{others['id']}/disposition",
                    json={"disposition": "false_positive", "revision": others["revision"]})
    assert held.status_code == 409 and "bob" in held.json()["detail"]
    # bulk is all or nothing: one case held by a colleague refuses the whole request
    refs = [{"id": others["id"], "revision": others["revision"]},
            {"id": case["id"], "revision": fresh["case"]["revision"]}]
    bulk = bob.post("/api/cases/bulk", json={"cases": refs, "disposition": "false_positive"})
    assert bulk.status_code == 409 and case_of(bob, "card-b")["case"]["status"] == "open"
    assert ada.post("/api/cases/bulk", json={"cases": refs, "disposition": "confirmed_fraud"}
                    ).status_code == 200  # an admin may close a colleague's case
    assert analyst_labels(engine) == {"k-b1": 1, "k-a1": 1, "k-a2": 1, "k-a9": 1}


@pytest.mark.parametrize("method,path,body", [
    ("post", "/api/cases/{id}/claim", None),
    ("post", "/api/cases/{id}/disposition", {"disposition": "false_positive", "revision": 0}),
    ("post", "/api/cases/bulk", {"cases": [{"id": "{id}", "revision": 0}],
                                 "disposition": "false_positive"}),
])
def test_viewers_read_cases_but_cannot_change_them(desk, method, path, body):
    engine, app, pw = desk
    case_id = case_id_of(engine, "card-a")
    if body and "cases" in body:
        body = {**body, "cases": [{"id": case_id, "revision": 0}]}
    url = path.replace("{id}", str(case_id))
    assert TestClient(app).get("/api/cases").status_code == 401
    vera = client_for(app, pw, "vera")
    assert vera.get(f"/api/cases/{case_id}").status_code == 200
    assert getattr(vera, method)(url, json=body).status_code == 403
    assert getattr(TestClient(app), method)(url, json=body).status_code == 401
    assert case_of(vera, "card-a")["case"]["revision"] == 0


def test_card_queue_and_case_pages(desk):
    engine, app, pw = desk
    ann = TestClient(app)
    csrf = login(ann, "ann", pw["ann"])
    cards = ann.get("/cards")
    assert cards.status_code == 200 and 'href="/cards"' in cards.text  # in the desk's nav
    assert re.findall(r'class="case-link" href="/cases/\d+">([^<]+)<', cards.text) == [
        "card-b", "card-a", "card-c"]
    case_id = case_id_of(engine, "card-a")
    page = ann.get(f"/cases/{case_id}")
    assert page.status_code == 200
    marks = re.findall(r'name="mark" value="([^"]+)" checked', page.text)
    assert marks == ["k-a1", "k-a2"]  # every open alert ticked by default
    form = {"revision": "0", "marks": "1", "mark": ["k-a1"], "disposition": "confirmed_fraud"}
    assert ann.post(f"/cases/{case_id}/disposition", data=form).status_code == 403  # no CSRF
    done = ann.post(f"/cases/{case_id}/disposition", data={**form, "csrf_token": csrf},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{case_id}"
    assert analyst_labels(engine) == {"k-a1": 1}
    again = ann.post(f"/cases/{case_id}/disposition", data={**form, "csrf_token": csrf})
    assert again.status_code == 409 and "changed since you loaded it" in again.text
    vera = TestClient(app)
    vcsrf = login(vera, "vera", pw["vera"])
    assert 'name="sel"' not in vera.get("/cards").text
    bulk = vera.post("/cards/bulk", data={"csrf_token": vcsrf, "sel": ["1:0"],
                                          "disposition": "false_positive"})
    assert "nothing changed" in bulk.text
    b = case_id_of(engine, "card-b")
    closed = ann.post("/cards/bulk", data={"csrf_token": csrf, "sel": [f"{b}:0"],
                                           "disposition": "false_positive"})
    assert "1 case closed" in closed.text
    assert analyst_labels(engine) == {"k-a1": 1, "k-b1": 0}
    assert ann.get("/cases/999999").status_code == 404
    assert 'fraudstream_desk_changes_total{action="case_disposition"} 2.0' in ann.get(
        "/metrics").text


def test_the_keyed_scorer_fills_the_card_queue_and_the_case_shows_the_card(db_url, home,
                                                                           tmp_path):
    """Alerts written by the keyed scorer's pipeline gather per card; the case page shows the
    card panel (history, words) of its highest-scoring alert."""
    from tests.keyed_desk_fixtures import seed_keyed

    engine = connect(db_url)
    keyed = seed_keyed(engine, home, tmp_path / "staging")
    app = create_app(engine, secret=SECRET, limiter=LoginLimiter())
    ann = client_for(app, add_users(engine), "ann")
    items = ann.get("/api/cases").json()["items"]
    alerted_cards = sorted({keyed.tx_card[t] for t in keyed.alerts})
    assert sorted(c["card_id"] for c in items) == alerted_cards
    for case in items:
        got = ann.get(f"/api/cases/{case['id']}").json()
        listed = [a["transaction_id"] for a in got["alerts"]]
        assert listed == [t for t in keyed.alerts if keyed.tx_card[t] == case["card_id"]]
        assert case["n_alerts"] == len(listed)
        assert got["card"]["card_id"] == case["card_id"]
    c1 = next(c for c in items if c["card_id"] == "c1")
    page = ann.get(f"/cases/{c1['id']}")
    assert page.status_code == 200 and 'id="card-panel"' in page.text
    assert "transactions in the last 24 h" in page.text
    engine.dispose()


def test_an_alert_racing_a_close_waits_and_opens_a_new_case(desk, monkeypatch):
    """The scorer's batch for the card arrives while an analyst's close holds the case: it
    waits for the close, finds the case closed and opens a new one — not labelled, not lost."""
    import time

    from desk import case_work

    engine, _, _ = desk
    case_id = case_id_of(engine, "card-a")
    scorer = threading.Thread(target=score_cards, args=(
        engine, [("k-late", "card-a", 0.97, 9.0)]), kwargs={"start_s": 99_000.0})
    original = case_work.change_alert

    def closing(*args, **kwargs):  # inside the close's transaction, the case row locked
        if not scorer.is_alive():
            scorer.start()
            time.sleep(0.3)  # the batch blocks on the case (PostgreSQL) or the writer lock
        return original(*args, **kwargs)

    monkeypatch.setattr(case_work, "change_alert", closing)
    act_on_cases(engine, [CaseRef(case_id, 0)], "disposition", User(0, "ann", "analyst"),
                 disposition="confirmed_fraud")
    scorer.join()
    assert analyst_labels(engine) == {"k-a1": 1, "k-a2": 1}
    with engine.connect() as conn:
        late = conn.execute(select(alerts.c.case_id, alerts.c.status)
                            .where(alerts.c.transaction_id == "k-late")).one()
    assert late.case_id != case_id and late.status == "open"
    assert case_id_of(engine, "card-a") == case_id  # (the first alert's case)


def test_a_case_whose_alerts_are_all_closed_elsewhere_is_closed_by_the_system(desk):
    """A chargeback (the label sink's write) or the alert queue closing a case's last open alert
    closes the case in the same transaction: disposition settled, by system, audited; also when
    the chargeback arrived before the alert (the scorer's write settles and attaches it)."""
    from labels.service import write_labels

    engine, app, pw = desk
    ann = client_for(app, pw, "ann")
    a_case = case_id_of(engine, "card-a")
    with engine.begin() as conn:  # the label sink's batch: a chargeback for one of card-a's two
        write_labels(conn, [label("k-a1", True, "chargeback", 6)])
    assert case_of(ann, "card-a")["case"]["status"] == "open"  # k-a2 still needs a look
    assert ann.post("/api/alerts/1/k-a2/disposition",
                    json={"disposition": "false_positive"}).status_code == 200
    got = ann.get(f"/api/cases/{a_case}").json()
    assert (got["case"]["status"], got["case"]["disposition"]) == ("closed", "settled")
    assert got["case"]["disposition_note"] == (
        "every alert closed elsewhere: 1 chargeback, 1 false positive")
    assert [(e["actor"], e["action"]) for e in got["audit"]][-1:] == [("system", "case_settle")]
    assert "card-a" not in [c["card_id"] for c in ann.get("/api/cases").json()["items"]]
    assert "all alerts settled elsewhere" in ann.get(f"/cases/{a_case}").text
    with engine.begin() as conn:  # card-c's only alert: its chargeback closes the case at once
        write_labels(conn, [label("k-c1", True, "chargeback", 6)])
    assert case_of(ann, "card-c", status="closed")["case"]["disposition"] == "settled"
    with engine.begin() as conn:  # a chargeback before its alert: the scorer's write settles it
        write_labels(conn, [label("k-d1", True, "chargeback", 6)])
    score_cards(engine, [("k-d1", "card-d", 0.8, 3.0)], start_s=95_000.0)
    d = case_of(ann, "card-d", status="closed")
    assert (d["case"]["disposition"], d["alerts"][0]["disposition"]) == ("settled", "chargeback")
    # card-b's case is untouched; closing one of two alerts of a case leaves it open
    assert case_of(ann, "card-b")["case"]["status"] == "open"
    with engine.connect() as conn:
        settles = conn.execute(select(desk_audit.c.case_id).where(
            desk_audit.c.action == "case_settle")).scalars().all()
    assert sorted(settles) == sorted([a_case, case_id_of(engine, "card-c"),
                                      case_id_of(engine, "card-d")])
