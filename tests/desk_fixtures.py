"""Shared by the desk tests: a seeded store (a model version, decisions, alerts with
explanations), desk users, and logged-in TestClient sessions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, insert

from desk import auth
from schemas.events import event_time
from store.bulk import insert_ignore
from store.tables import alerts, decisions, model_versions

THRESHOLD = 0.5
SECRET = "test-secret-of-enough-length"
#: argon2 at its cheapest, for tests only (the desk's default costs ~50 ms a hash by design).
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cheap Argon2 for the desk's tests (imported by a test module, it applies to all of its
    tests); tests/test_desk_serve.py runs a real `desk serve` process, with the real hasher."""
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
PASSWORDS: dict[str, str] = {}


def seed(engine: Engine, n_alerts: int = 30, n_genuine: int = 20, version: int = 1) -> None:
    """``n_alerts`` flagged decisions (with alerts) and ``n_genuine`` unflagged ones, one per
    minute of dataset time; alert i has score 0.5 + i/(2n) and amount 10*(i+1)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(model_versions).values(
                version=version,
                created_at=now,
                strategy="weighted",
                threshold=THRESHOLD,
                threshold_policy="max-f1",
                metrics={},
                artifact_dir="/nonexistent",
                manifest_sha256="0" * 64,
                data_sha256="0" * 64,
                stage="production",
            )
        )
        rows_d, rows_a = [], []
        for i in range(n_alerts + n_genuine):
            flagged = i < n_alerts
            score = 0.5 + i / (2 * n_alerts) if flagged else 0.1
            time_s = 60.0 * i
            tx = f"tx-{i:04d}"
            common = {
                "transaction_id": tx,
                "model_version": version,
                "score": min(score, 1.0),
                "threshold": THRESHOLD,
                "amount": 10.0 * (i + 1),
                "source_topic": "transactions",
                "source_partition": 0,
                "source_offset": i,
            }
            rows_d.append(
                {**common, "flagged": flagged, "event_time": event_time(time_s), "scored_at": now}
            )
            if flagged:
                rows_a.append(
                    {
                        **common,
                        "time_s": time_s,
                        "created_at": now - timedelta(minutes=n_alerts - i),
                        "explanation": [
                            {"feature": "V14", "contribution": 2.5},
                            {"feature": "V4", "contribution": -0.7},
                        ],
                    }
                )
        insert_ignore(conn, decisions, rows_d)
        insert_ignore(conn, alerts, rows_a)


def label(tid: str, fraud: bool, source: str, hours: float, label_id: str | None = None) -> dict:
    """A label row as the label sink stores it (``labels.service.write_labels``'s input)."""
    return {"label_id": label_id or f"{source}:{tid}:{hours}", "transaction_id": tid,
            "is_fraud": int(fraud), "source": source,
            "observed_at": datetime(2013, 9, 1, tzinfo=UTC) + timedelta(hours=hours),
            "reason": None, "received_at": datetime.now(UTC), "source_topic": "labels",
            "source_partition": 0, "source_offset": 0}


def add_users(engine: Engine) -> dict[str, str]:
    """viewer ``vera``, analysts ``ann`` and ``bob``, admin ``ada``: name → password."""
    for name, role in (
        ("vera", "viewer"),
        ("ann", "analyst"),
        ("bob", "analyst"),
        ("ada", "admin"),
    ):
        PASSWORDS[name] = auth.add_user(engine, name, role)  # type: ignore[arg-type]
    return dict(PASSWORDS)


def login(client, name: str, password: str) -> str:  # type: ignore[no-untyped-def]
    """Log ``client`` in; return the session's CSRF token (as the pages carry it)."""
    response = client.post(
        "/login", data={"username": name, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/queue")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def client_for(app, passwords: dict[str, str], name: str):  # type: ignore[no-untyped-def]
    """A TestClient logged in as ``name``, sending the session's CSRF token on every request."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    client.headers["X-CSRF-Token"] = login(client, name, passwords[name])
    return client


def score_cards(engine: Engine, alerted: list[tuple[str, str, float, float]],
                version: int = 1, start_s: float = 86_400.0) -> None:
    """Write one keyed batch through the keyed scorer's own write (``scorer.keyed.write_keyed``:
    decisions, alerts with their card, the cards' cases) for ``alerted`` = [(transaction id,
    card, score, amount)], every one flagged, one per minute of event time from ``start_s``."""
    import numpy as np

    from scorer.keyed import write_keyed
    from scorer.process import ScoredBatch

    now = datetime.now(UTC)
    decisions_, alerts_ = [], []
    for i, (tx, card, score, amount) in enumerate(alerted):
        common = {"transaction_id": tx, "model_version": version, "score": score,
                  "threshold": THRESHOLD, "amount": amount, "source_topic": "keyed",
                  "source_partition": 0, "source_offset": i}
        time_s = start_s + 60.0 * i
        decisions_.append({**common, "flagged": True, "event_time": event_time(time_s),
                           "scored_at": now})
        alerts_.append({**common, "time_s": time_s, "created_at": now, "card_id": card,
                        "explanation": [{"feature": "customer_nb_tx_1d", "contribution": 1.5}],
                        "feature_values": {"customer_nb_tx_1d": 4.0}})
    scored = ScoredBatch(np.array([a[2] for a in alerted]), np.ones(len(alerted), dtype=bool),
                         decisions_, alerts_, [], [])
    with engine.begin() as conn:
        write_keyed(conn, scored, log_decisions=True, fence=None, state=lambda conn: None)
