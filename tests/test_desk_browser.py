"""A real browser on the desk: Debian's chromium + chromium-driver, headless, via Selenium.

Logs in, filters the queue, opens an alert, records a disposition, and sees the dashboard's
matured counts change; saves screenshots of the queue, the detail page and the dashboard under
the test's tmp dir (or ``$FRAUDSTREAM_DESK_SCREENSHOTS``). With ``CI=true`` a missing chromium
fails the test instead of skipping it (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn

import fraudstream_cli
from desk import auth
from desk.app import create_app
from labels.service import write_labels
from store.db import connect
from tests.ci import missing
from tests.desk_fixtures import CHEAP_HASHER, seed

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _need_browser() -> None:
    absent = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    if absent:
        message = f"{' and '.join(absent)} missing"
        missing(message, "apt-get install chromium chromium-driver")


def _label(tid: str, fraud: bool, source: str) -> dict:
    when = datetime(2013, 9, 1, 6, tzinfo=UTC)
    return {"label_id": f"{source}:{tid}", "transaction_id": tid, "is_fraud": int(fraud),
            "source": source, "observed_at": when, "reason": None, "received_at": when,
            "source_topic": "labels", "source_partition": 0, "source_offset": 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = connect(url)
    seed(engine, n_alerts=40, n_genuine=20)
    with engine.begin() as conn:  # truth that arrived: a chargeback settles tx-0010
        write_labels(conn, [_label("tx-0010", True, "chargeback"),
                            _label("tx-0011", False, "other")])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert (
            fraudstream_cli.main(["desk", "user", "add", "ann", "--role", "analyst", "--db", url])
            == 0
        )
    password = out.getvalue().strip().splitlines()[-1]
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, secret="x" * 32), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", password
    server.should_exit = True
    thread.join(10)
    engine.dispose()


def _gone(element) -> bool:
    """True once ``element``'s page was replaced (chromium reports that as a stale element or,
    mid-navigation, as an inspector error)."""
    from selenium.common.exceptions import WebDriverException

    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


@pytest.fixture
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(3)
    yield driver
    driver.quit()


def test_analyst_works_an_alert_in_a_real_browser(served, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def click_and_load(element_id):  # a click returns before the next page has loaded
        old = b.find_element(By.TAG_NAME, "html")
        b.find_element(By.ID, element_id).click()
        WebDriverWait(b, 10).until(lambda d: _gone(old))
        WebDriverWait(b, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )

    base, password = served
    shots = Path(os.environ.get("FRAUDSTREAM_DESK_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    b = browser
    b.get(f"{base}/queue")
    assert "/login" in b.current_url
    b.find_element(By.ID, "username").send_keys("ann")
    b.find_element(By.ID, "password").send_keys(password)
    click_and_load("login")
    assert b.current_url.endswith("/queue")
    b.get(f"{base}/dashboard")
    tp_before = int(b.find_element(By.ID, "tp-v1").text)

    b.get(f"{base}/queue")
    b.find_element(By.ID, "f-min-score").send_keys("0.9")
    click_and_load("apply")
    assert "min_score=0.9" in b.current_url
    rows = b.find_elements(By.CSS_SELECTOR, "a.alert-link")
    assert rows and len(rows) == 8  # scores >= 0.9 of the 40 seeded alerts
    assert b.execute_script("return typeof htmx") == "object"  # vendored, allowed by the CSP
    assert b.find_element(By.ID, "new-alerts").get_attribute("hx-trigger") == "every 10s"
    b.save_screenshot(str(shots / "queue.png"))

    b.execute_script("arguments[0].id = 'first-alert'", rows[0])
    click_and_load("first-alert")
    assert "tx-0039" in b.find_element(By.TAG_NAME, "h1").text
    assert "V14 (anonymised PCA component 14)" in b.page_source  # the explanation, in words
    assert "range not recorded" in b.page_source  # the seeded model predates feature ranges
    click_and_load("claim")
    assert b.find_element(By.ID, "release")  # claimed: now it can be released
    b.find_element(By.ID, "d-confirmed_fraud").click()
    b.find_element(By.ID, "note").send_keys("cardholder confirmed they did not pay")
    b.save_screenshot(str(shots / "detail.png"))
    click_and_load("dispose")
    assert "closed" in b.find_element(By.TAG_NAME, "h1").text
    history = b.page_source
    assert "analyst" in history and "(current)" in history
    b.save_screenshot(str(shots / "detail-closed.png"))

    b.set_window_size(1280, 1500)  # the whole dashboard, counts table included
    b.get(f"{base}/dashboard")
    assert int(b.find_element(By.ID, "tp-v1").text) == tp_before + 1
    assert int(b.find_element(By.ID, "closed-count").text) == 2  # ann's and the chargeback's
    assert b.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert "matured after 48h" in b.find_element(By.ID, "maturity").text
    b.save_screenshot(str(shots / "dashboard.png"))

    b.set_window_size(1280, 900)
    b.get(f"{base}/queue?status=all&order=newest&limit=40")
    settled = b.find_element(By.XPATH, "//tr[td/a[text()='tx-0010']]").text
    assert "fraud chargeback, 2013-09-01 06:00:00" in settled
    assert "confirmed by chargeback" in settled
    b.save_screenshot(str(shots / "queue-all.png"))
    b.get(f"{base}/queue?status=closed")
    assert not b.find_elements(By.ID, "bulk-submit")  # nothing to select: no bulk bar
    b.save_screenshot(str(shots / "queue-closed.png"))

    # The API docs come from the desk itself (no CDN): Swagger UI renders the operations.
    b.get(f"{base}/docs")
    WebDriverWait(b, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock"))
    assert "/api/alerts" in b.find_element(By.ID, "swagger-ui").text
    loaded = b.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(base) for u in loaded), loaded
    b.save_screenshot(str(shots / "docs.png"))
    for name in ("queue.png", "detail.png", "dashboard.png", "queue-closed.png", "docs.png"):
        assert (shots / name).stat().st_size > 10_000


@pytest.fixture
def served_keyed(tmp_path, home, monkeypatch):
    """The desk over keyed demo data scored through the keyed scorer's pipeline."""
    from tests.keyed_desk_fixtures import seed_keyed

    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    engine = connect(f"sqlite:///{tmp_path / 'keyed.db'}")
    keyed = seed_keyed(engine, home, tmp_path / "staging")
    password = auth.add_user(engine, "ann", "analyst")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(engine, secret="x" * 32, capacity=1), host="127.0.0.1", port=port,
        log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", password, keyed
    server.should_exit = True
    thread.join(10)
    engine.dispose()


def test_analyst_works_a_card_in_a_real_browser(served_keyed, browser, tmp_path):
    """Keyed demo data: the card queue, a case with the card's history and the worded
    explanation; closing it as confirmed fraud labels the card's transactions and moves the
    dashboard's CP@k."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def load(element):  # a click returns before the next page has loaded
        old = b.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(b, 10).until(lambda d: _gone(old))
        WebDriverWait(b, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def cp(day: str) -> str:
        b.get(f"{base}/dashboard")
        return b.find_element(By.CSS_SELECTOR, f"#cp-{day} .cp-value").text

    base, password, keyed = served_keyed
    shots = Path(os.environ.get("FRAUDSTREAM_DESK_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    b = browser
    b.get(f"{base}/login")
    b.find_element(By.ID, "username").send_keys("ann")
    b.find_element(By.ID, "password").send_keys(password)
    load(b.find_element(By.ID, "login"))
    b.set_window_size(1280, 1500)
    # the burst day and the next (c1 is the only card alerted, so CP@1 is 1 once it is labelled)
    assert (cp("2018-04-21"), cp("2018-04-22")) == ("0.000", "0.000")
    assert "Card precision CP@1" in b.page_source

    b.set_window_size(1280, 900)
    b.get(f"{base}/cards")
    cases = b.find_elements(By.CSS_SELECTOR, "a.case-link")
    assert [c.text for c in cases] == ["c1", "c2"]  # highest score first
    b.save_screenshot(str(shots / "cards.png"))
    load(cases[0])
    assert "Card c1" in b.find_element(By.TAG_NAME, "h1").text
    b.set_window_size(1280, 3000)
    words = b.find_element(By.ID, "card-words").text
    assert re.search(r"card: \d+ transactions in the last 24 h \(usual \d", words), words
    assert "was known fraud (fraud is known 7 days after)" in words
    history = b.find_element(By.ID, "card-history")
    assert len(history.find_elements(By.CSS_SELECTOR, "tr")) > 20
    assert "this alert" in history.find_element(By.CSS_SELECTOR, "tr.current").text
    assert "T9" in b.find_element(By.ID, "terminal").text
    marked = b.find_elements(By.CSS_SELECTOR, "input[name=mark]:checked")
    assert len(marked) == 7  # the burst's six alerts and the next day's (default: all)
    b.save_screenshot(str(shots / "case.png"))

    load(b.find_element(By.ID, "claim"))
    b.find_element(By.ID, "d-confirmed_fraud").click()
    b.find_element(By.ID, "note").send_keys("cardholder did not make these purchases")
    load(b.find_element(By.ID, "dispose"))
    assert "closed" in b.find_element(By.TAG_NAME, "h1").text
    listed = b.find_element(By.CSS_SELECTOR, "table.case-alerts").text
    assert listed.count("fraud analyst") == 7  # every marked transaction labelled
    current = b.find_element(By.CSS_SELECTOR, "#card-history tr.current").text
    assert "fraud" in current and "analyst" in current  # the labels, in the card's history
    b.save_screenshot(str(shots / "case-closed.png"))

    b.set_window_size(1280, 1500)
    assert (cp("2018-04-21"), cp("2018-04-22")) == ("1.000", "1.000")
    assert cp("2018-04-23") == "0.000"  # c2's case is still open
    b.execute_script("document.getElementById('card-precision').scrollIntoView()")
    b.save_screenshot(str(shots / "card-dashboard.png"))
    for name in ("cards.png", "case.png", "case-closed.png", "card-dashboard.png"):
        assert (shots / name).stat().st_size > 10_000
