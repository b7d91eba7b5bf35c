"""The desk on keyed data, on SQLite and PostgreSQL: a keyed alert's page and API show the card's
transactions around it, its windows beside their usual level, the terminal's delayed risk and
the stored feature vector in words; the dashboard's card precision per day (CP@k for the
desk's capacity) moves as dispositions and chargebacks label the cards, once the day is mature.
Keyed data is written by the keyed scorer's pipeline (tests/keyed_desk_fixtures.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from desk.app import create_app, score_text
from desk.auth import LoginLimiter
from desk.card_precision import CAPACITY_ENV, capacity
from schemas.errors import FraudstreamError
from store.db import connect
from store.tables import alerts, keyed_transactions
from tests.desk_fixtures import (
    SECRET,
    add_users,
    cheap_hashes,  # noqa: F401  (autouse)
    client_for,
    seed,
)
from tests.keyed_desk_fixtures import BURST_DAY, add_label, seed_keyed


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_keyed_alert_shows_the_card_its_windows_and_the_words(db_url, home, tmp_path):
    engine = connect(db_url)
    seed(engine, n_alerts=2, n_genuine=0)  # a ULB (v1) model and its alerts: the v1 page stays
    keyed = seed_keyed(engine, home, tmp_path / "staging")
    c1 = keyed.burst["c1"]
    assert set(c1) <= set(keyed.alerts)  # the terminal's known fraud flags the whole burst
    c2 = keyed.burst["c2"]
    assert c2[0] not in keyed.alerts and c2[2] in keyed.alerts
    app = create_app(engine, secret=SECRET, limiter=LoginLimiter())
    c = client_for(app, add_users(engine), "ann")

    got = c.get(f"/api/alerts/{keyed.version}/{c1[3]}").json()
    stored = got["alert"]["feature_values"]
    card = got["card"]
    assert (card["card_id"], card["terminal_id"]) == ("c1", "T9")
    # the card's history: its own transactions only, the alerted one marked, in time order
    history = card["history"]
    assert {keyed.tx_card[h["transaction_id"]] for h in history} == {"c1"}
    assert [h["transaction_id"] for h in history if h["current"]] == [c1[3]]
    times = [h["event_time"] for h in history]
    assert times == sorted(times) and c1[5] in [h["transaction_id"] for h in history]
    now = next(h for h in history if h["current"])
    assert (now["amount"], now["terminal_id"], now["flagged"]) == (210.0, "T9", True)
    assert now["score"] == pytest.approx(got["alert"]["score"]) and now["label"] is None
    daily = next(h for h in history if h["transaction_id"] == f"c1-d{BURST_DAY - 1:02d}")
    assert (daily["flagged"], daily["alerted"], daily["terminal_id"]) == (False, False, "T0")
    # windows and words come from the stored vector (what the model saw)
    assert stored["customer_count_1d"] == 5.0  # 09:00 that day and the burst's first four
    windows = {w["days"]: w for w in card["card_windows"]}
    assert windows[1]["count"] == 5.0 and windows[30]["usual_count"] is None
    assert windows[1]["usual_count"] == pytest.approx(stored["customer_count_30d"] / 30)
    assert {w["days"]: w["risk"] for w in card["terminal_windows"]}[7] == 1.0
    # the terminal's recent activity from the store: c1's burst up to this purchase
    assert card["terminal_recent"] == [
        {"days": 1, "transactions": 4, "cards": 1, "flagged": 4, "fraud": 0},
        {"days": 7, "transactions": 4, "cards": 1, "flagged": 4, "fraud": 0}]
    words = {w["feature"]: w for w in card["words"]}
    usual = f"{stored['customer_count_30d'] / 30:.1f}"
    assert words["customer_count_1d"]["sentence"] == (
        f"card: 5 transactions in the last 24 h (usual {usual})")
    assert words["terminal_risk_7d"]["sentence"] == (
        "terminal: 100 % of its 1 transaction 7–14 days ago was known fraud "
        "(fraud is known 7 days after)")
    explained = {e["feature"]: e["contribution"] for e in got["alert"]["explanation"]}
    assert words["customer_count_1d"]["contribution"] == explained["customer_count_1d"] > 0
    assert words["terminal_risk_7d"]["contribution"] == explained["terminal_risk_7d"] > 0
    assert {w["feature"]: w["value"] for w in card["words"]} == stored
    # not recomputed: a later change to the store leaves what the model saw as it was
    with engine.begin() as conn:
        conn.execute(update(keyed_transactions).where(
            keyed_transactions.c.customer_id == "c1").values(amount=1.0))
    again = c.get(f"/api/alerts/{keyed.version}/{c1[3]}").json()["card"]
    assert again["words"] == card["words"]

    page = c.get(f"/alerts/{keyed.version}/{c1[3]}")
    assert page.status_code == 200 and 'id="card-panel"' in page.text
    seen = text_of(page.text)
    assert f"card: 5 transactions in the last 24 h (usual {usual})" in seen
    assert "was known fraud (fraud is known 7 days after)" in seen
    assert f"{explained['customer_count_1d']:+.3f}" in seen and "this alert" in seen
    # the hand-set model gives amount/weekend/night no weight: they are not shown as reasons
    assert 0.0 in explained.values() and "+0.000" not in seen
    assert {w["feature"] for w in card["words"] if w["contribution"] is not None} == {
        f for f, v in explained.items() if v != 0.0}
    assert "No other feature contributed to this score" in seen
    assert "Terminal T9" in seen and "7–14 days ago" in seen and "baseline" in seen
    assert "per-day rate" in seen  # the usual level says how it is defined
    # a terminal window without transactions has no known-fraud share (not "0 %")
    assert re.search(r"7–8 days ago</td>\s*<td class=\"num\">0</td>\s*<td class=\"num\">–</td>",
                     page.text)
    # the card's history writes scores as the rest of the desk does (the case's alert list)
    current = re.search(r'<tr class="current">.*?</tr>', page.text, re.S)
    assert current and f">{score_text(got['alert']['score'])}<" in current.group(0)
    # and so does the alert's own score (four decimals made 0.99999 read 1.0000)
    assert f"<strong>{score_text(got['alert']['score'])}</strong> against threshold" in page.text
    assert f"/alerts/{keyed.version}/{c1[5]}" in page.text  # the card's other alerts link
    ulb = c.get("/api/alerts/1/tx-0001").json()
    assert ulb["card"] is None and ulb["alert"]["features"][0]["title"].startswith("V14")
    assert 'id="card-panel"' not in c.get("/alerts/1/tx-0001").text

    # a disposition labels the transaction: the card's history shows it
    done = c.post(f"/api/alerts/{keyed.version}/{c1[3]}/disposition",
                  json={"disposition": "confirmed_fraud"})
    assert done.status_code == 200, done.text
    after = c.get(f"/api/alerts/{keyed.version}/{c1[5]}").json()["card"]["history"]
    assert {h["transaction_id"]: (h["label"], h["label_source"]) for h in after}[c1[3]] == (
        "fraud", "analyst")
    engine.dispose()


def test_card_precision_per_day_moves_with_dispositions_and_chargebacks(db_url, home,
                                                                        tmp_path):
    engine = connect(db_url)
    keyed = seed_keyed(engine, home, tmp_path / "staging")
    app = create_app(engine, secret=SECRET, limiter=LoginLimiter(), capacity=1)
    c = client_for(app, add_users(engine), "ann")

    def per_day() -> dict[str, dict]:
        cp = c.get("/api/dashboard").json()["card_precision"]
        assert cp["k"] == 1 and "matured after 48h" in cp["maturity"]
        return {d["day"]: d for d in cp["days"]}

    burst1, burst2 = "2018-04-21", "2018-04-23"  # BURST_DAY and two days later
    before = per_day()
    # only days with keyed alerts: the bursts, and each card's next purchase (24 h after)
    assert set(before) == {burst1, "2018-04-22", burst2, "2018-04-24"}
    last = before["2018-04-24"]  # the stream's clock is 2018-04-26 09:30: 48 h not passed
    assert (last["first"], last["mature"], last["precision"]) == (["c2"], False, None)
    assert before[burst1]["first"] == ["c1"] and before[burst2]["first"] == ["c2"]
    assert before[burst1]["alerts"] == 6 and before[burst2]["alerts"] == 3
    assert before[burst1]["precision"] == 0.0 and before[burst1]["mature"]  # nothing labelled
    # a chargeback on c2's first burst purchase (not alerted) makes c2 compromised that day
    add_label(engine, keyed.burst["c2"][0], 1, "chargeback", datetime.now(UTC))
    assert per_day()[burst2]["precision"] == 1.0
    assert per_day()[burst1]["precision"] == 0.0
    # an analyst confirms one of c1's alerts
    tx = keyed.burst["c1"][2]
    assert c.post(f"/api/alerts/{keyed.version}/{tx}/disposition",
                  json={"disposition": "confirmed_fraud"}).status_code == 200
    assert per_day()[burst1]["precision"] == 1.0
    cp = c.get("/api/dashboard").json()["card_precision"]
    assert cp["mature_through"] == burst2
    assert cp["mean_precision"] == pytest.approx((1 + 0 + 1) / 3)  # 04-22: c1 not labelled
    page = text_of(c.get("/dashboard").text)
    assert "Card precision CP@1" in page and "capacity: 1 card a day" in page
    assert "matured after 48h" in page
    html = c.get("/dashboard").text
    row = re.search(rf'<tr id="cp-{burst1}">.*?</tr>', html, re.S)
    assert row and "1.000" in row.group(0)
    # each mature day's bar carries its value, so a day at 0 is seen, not taken for no data
    chart = re.search(r'<section class="card wide" id="card-precision">.*?</svg>', html, re.S)
    assert chart and re.findall(r'class="tick value"[^>]*>([^<]+)<', chart.group(0)) == [
        "1", "0", "1"]
    # a stricter window: the same days are not mature, so no CP@k yet, only what is confirmed
    young = c.get("/api/dashboard", params={"mature_after": "30d"}).json()["card_precision"]
    assert [d["precision"] for d in young["days"]] == [None] * 4
    assert [d["compromised"] for d in young["days"]] == [1, 0, 1, 0]
    assert young["mean_precision"] is None
    with engine.connect() as conn:
        cards = set(conn.execute(select(alerts.c.card_id)).scalars())
    assert cards == {"c1", "c2"}
    engine.dispose()


def test_capacity_setting(monkeypatch):
    monkeypatch.delenv(CAPACITY_ENV, raising=False)
    assert capacity() == 100
    monkeypatch.setenv(CAPACITY_ENV, "25")
    assert capacity() == 25 and capacity("7") == 7
    monkeypatch.setenv(CAPACITY_ENV, "lots")
    with pytest.raises(FraudstreamError, match=r"\$FRAUDSTREAM_DESK_CAPACITY.*'lots'"):
        capacity()
    with pytest.raises(FraudstreamError, match="--capacity"):
        capacity("0")
