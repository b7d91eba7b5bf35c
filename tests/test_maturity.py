"""The label window is one setting of a deployment (``$FRAUDSTREAM_MATURE_AFTER`` or
``--mature-after``): ``counts``, ``models compare``, ``retrain`` and the desk resolve it through
one helper and print it beside every matured figure, so the desk and the CLI agree on the same
data (real SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

import fraudstream_cli
from desk import auth
from desk.app import create_app
from schemas.errors import FraudstreamError
from store.db import connect
from store.settings import MATURE_AFTER_ENV, maturity
from tests.desk_fixtures import CHEAP_HASHER, add_users, login, seed


def test_maturity_resolves_flag_then_environment_then_default(monkeypatch):
    monkeypatch.delenv(MATURE_AFTER_ENV, raising=False)
    assert maturity().window == timedelta(hours=48) and maturity().source == "default"
    monkeypatch.setenv(MATURE_AFTER_ENV, "6h")
    got = maturity()
    assert (got.window, got.text, got.source) == (timedelta(hours=6), "6h", f"${MATURE_AFTER_ENV}")
    assert got.describe() == f"matured after 6h (from ${MATURE_AFTER_ENV})"
    assert maturity("90m").window == timedelta(minutes=90)  # the flag wins
    monkeypatch.setenv(MATURE_AFTER_ENV, "six hours")
    with pytest.raises(FraudstreamError, match=rf"\${MATURE_AFTER_ENV}: bad duration"):
        maturity()


def test_retrain_reads_the_deployment_window(monkeypatch):
    from trainer import retrain_cli

    monkeypatch.setenv(MATURE_AFTER_ENV, "6h")
    parser = argparse.ArgumentParser()
    retrain_cli.register(parser.add_subparsers())
    args = parser.parse_args(["retrain"])
    assert retrain_cli.options(args).mature_after_s == 6 * 3600.0
    args = parser.parse_args(["retrain", "--mature-after", "1h"])
    assert retrain_cli.options(args).mature_after_s == 3600.0


def test_desk_dashboard_equals_counts_on_the_same_data(db_url, monkeypatch, capsys):
    """50 decisions one minute apart; 20 minutes of label window leave the newest pending. The
    desk's API, its dashboard page and ``fraudstream counts`` all use the deployment's window."""
    monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
    monkeypatch.setenv(MATURE_AFTER_ENV, "20m")
    engine = connect(db_url)
    seed(engine)
    passwords = add_users(engine)
    client = TestClient(create_app(engine, secret="test-secret-of-enough-length"))
    login(client, "vera", passwords["vera"])

    board = client.get("/api/dashboard").json()["counts"]
    assert fraudstream_cli.main(["counts", "--json", "--db", db_url]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert board["rows"] == cli["rows"]
    assert board["mature_after"] == cli["mature_after"] == "20m"
    assert board["mature_after_s"] == cli["mature_after_s"] == 1200.0
    (row,) = cli["rows"]
    # the clock is minute 49: minutes 30..49 (the 20 unflagged) are pending; the 30 alerts of
    # minutes 0..29 are mature, unlabelled, hence genuine: false positives
    assert (row["pending"], row["fp"], row["tn"], row["tp"]) == (20, 30, 0, 0)

    page = client.get("/dashboard").text
    assert "matured after 20m (from $FRAUDSTREAM_MATURE_AFTER)" in page
    assert fraudstream_cli.main(["counts", "--db", db_url]) == 0
    assert "matured after 20m (from $FRAUDSTREAM_MATURE_AFTER)" in capsys.readouterr().out
    engine.dispose()
