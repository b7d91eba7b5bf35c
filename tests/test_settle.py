"""The queue shows the truth that has arrived, and a chargeback settles its alerts (real SQLite
and PostgreSQL): the current label (value, source, when) in the queue, the API and its filter;
a chargeback saying fraud closes the open and claimed alerts of its transaction as "confirmed by
chargeback" — audited as done by ``system``, once, however often the batch is re-delivered —
and never touches an alert an analyst closed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from desk.app import create_app
from labels.service import write_labels
from store.db import connect
from store.tables import alerts, desk_audit
from tests.desk_fixtures import (
    add_users,
    cheap_hashes,  # noqa: F401  (autouse)
    label,
    login,
    seed,
)


def test_chargeback_settles_open_and_claimed_alerts_never_an_analysts(db_url):
    engine = connect(db_url)
    seed(engine)
    passwords = add_users(engine)
    client = TestClient(create_app(engine, secret="test-secret-of-enough-length"))
    client.headers["X-CSRF-Token"] = login(client, "ann", passwords["ann"])
    assert client.post("/api/alerts/1/tx-0003/claim").status_code == 200
    closed = client.post("/api/alerts/1/tx-0004/disposition",
                         json={"disposition": "false_positive", "note": "known customer"})
    assert closed.status_code == 200

    batch = [
        label("tx-0001", True, "chargeback", 6),  # open: settled
        label("tx-0003", True, "chargeback", 6),  # claimed by ann, not closed: settled
        label("tx-0004", True, "chargeback", 6),  # ann closed it: her disposition stands
        label("tx-0005", True, "replay", 6),  # not a chargeback: stays open
        label("tx-0006", True, "chargeback", 6),  # a chargeback ...
        label("tx-0006", False, "other", 7),  # ... corrected later: the truth is genuine
    ]
    for _ in range(2):  # the label sink's batch, and the same batch delivered again
        with engine.begin() as conn:
            write_labels(conn, batch)

    items = client.get("/api/alerts", params={"status": "all", "limit": 200}).json()["items"]
    state = {r["transaction_id"]: r for r in items}

    def work(tid: str) -> tuple:
        return state[tid]["status"], state[tid]["disposition"]

    assert work("tx-0001") == work("tx-0003") == ("closed", "chargeback")
    assert state["tx-0003"]["assignee"] == "ann"  # who held it is kept
    assert work("tx-0004") == ("closed", "false_positive")  # the analyst's verdict stands
    assert state["tx-0005"]["status"] == "open" and state["tx-0006"]["status"] == "open"
    # the current label: value, source, when — in every queue row
    assert (state["tx-0001"]["label"], state["tx-0001"]["label_source"]) == ("fraud", "chargeback")
    assert state["tx-0001"]["label_observed_at"].startswith("2013-09-01T06:00")
    assert (state["tx-0006"]["label"], state["tx-0006"]["label_source"]) == ("genuine", "other")
    # ann's verdict (observed now) is later than the chargeback: it stays the current label
    assert (state["tx-0004"]["label"], state["tx-0004"]["label_source"]) == ("genuine", "analyst")
    assert state["tx-0002"]["label"] is None

    open_ids = {r["transaction_id"] for r in client.get(
        "/api/alerts", params={"limit": 200}).json()["items"]}
    assert {"tx-0001", "tx-0003"}.isdisjoint(open_ids) and "tx-0005" in open_ids
    frauds = client.get("/api/alerts", params={"status": "all", "label": "fraud"}).json()
    assert {r["transaction_id"] for r in frauds["items"]} == {"tx-0001", "tx-0003", "tx-0005"}
    unlabelled = client.get("/api/alerts", params={"status": "all", "label": "none",
                                                   "limit": 200}).json()["items"]
    assert len(unlabelled) == 30 - 5
    assert client.get("/api/alerts", params={"label": "maybe"}).status_code == 400

    with engine.connect() as conn:
        audit = conn.execute(select(desk_audit).where(desk_audit.c.actor == "system")
                             .order_by(desk_audit.c.id)).all()
    assert [(a.transaction_id, a.action) for a in audit] == [
        ("tx-0001", "settle"), ("tx-0003", "settle")]  # once each, despite the re-delivery
    assert audit[1].old["status"] == "claimed" and audit[1].new["disposition"] == "chargeback"
    detail = client.get("/api/alerts/1/tx-0001").json()
    assert detail["audit"][-1]["actor"] == "system"
    refused = client.post("/api/alerts/1/tx-0001/disposition",
                          json={"disposition": "false_positive"})
    assert refused.status_code == 409 and "confirmed by chargeback" in refused.json()["detail"]

    shown = client.get("/alerts/1/tx-0001").text
    assert "Closed as <strong>confirmed by chargeback</strong> by the system" in shown
    assert "by None" not in shown
    page = client.get("/queue", params={"status": "closed"}).text
    assert "confirmed by chargeback" in page and "chargeback, 2013-09-01 06:00:00" in page
    engine.dispose()


def test_an_alert_arriving_after_its_chargeback_is_settled_by_the_scorers_write(db_url):
    """The other order: the chargeback is stored first; the scorer's batch that writes the alert
    settles it in the same transaction (scorer.sink.write_batch)."""
    from scorer.process import ScoredBatch
    from scorer.sink import write_batch

    engine = connect(db_url)
    seed(engine, n_alerts=2, n_genuine=0)
    with engine.begin() as conn:
        write_labels(conn, [label("late-1", True, "chargeback", 1)])
        row = conn.execute(select(alerts).where(alerts.c.transaction_id == "tx-0000")).one()
    late = {**dict(row._mapping), "transaction_id": "late-1", "status": "open", "revision": 0}
    scored = ScoredBatch(scores=None, flagged=None, decision_rows=[], alert_rows=[late],
                         alerts=[], label_rows=[])
    for _ in range(2):  # delivered twice
        with engine.begin() as conn:
            write_batch(conn, scored)
    with engine.connect() as conn:
        got = conn.execute(select(alerts.c.status, alerts.c.disposition, alerts.c.revision)
                           .where(alerts.c.transaction_id == "late-1")).one()
        entries = conn.execute(select(desk_audit.c.actor)
                               .where(desk_audit.c.transaction_id == "late-1")).all()
    assert tuple(got) == ("closed", "chargeback", 1) and [e.actor for e in entries] == ["system"]
    engine.dispose()
