"""``fraudstream models compare A B`` on known decisions and labels equals an offline
recomputation (same transactions, latest label wins, maturity as counts judge it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from schemas.errors import FraudstreamError
from store.compare import compare
from store.db import connect
from store.tables import decisions, labels

EPOCH = datetime(2013, 9, 1, tzinfo=UTC)
THRESHOLD = {1: 0.5, 2: 0.6}


def decision(tid: str, version: int, score: float, minute: int) -> dict:
    return {
        "transaction_id": tid,
        "model_version": version,
        "score": score,
        "threshold": THRESHOLD[version],
        "flagged": score >= THRESHOLD[version],
        "amount": 10.0,
        "event_time": EPOCH + timedelta(minutes=minute),
        "source_topic": "t",
        "source_partition": 0,
        "source_offset": minute,
        "scored_at": datetime.now(UTC),
    }


def label(tid: str, fraud: int, minute: int, n: int) -> dict:
    return {
        "label_id": f"{tid}:{n}",
        "transaction_id": tid,
        "is_fraud": fraud,
        "source": "chargeback",
        "observed_at": EPOCH + timedelta(minutes=minute),
        "received_at": datetime.now(UTC),
    }


@pytest.fixture
def known(db_url):
    """v1 decided t0..t299; v2 (a shadow started later) t50..t309; labels with corrections."""
    rng = np.random.default_rng(7)
    is_fraud = rng.random(310) < 0.15
    score = {v: np.clip(0.35 * is_fraud + rng.random(310) * 0.7, 0, 1) for v in (1, 2)}
    rows = [decision(f"t{i}", 1, float(score[1][i]), i) for i in range(300)]
    rows += [decision(f"t{i}", 2, float(score[2][i]), i) for i in range(50, 310)]
    truth, label_rows = {}, []
    for i in range(310):
        if is_fraud[i] and i < 280 or (not is_fraud[i] and i % 4 == 0):
            truth[f"t{i}"] = int(is_fraud[i])
            label_rows.append(label(f"t{i}", int(is_fraud[i]), i + 5, 0))
    for i in (60, 64):  # corrected later: the latest label wins
        truth[f"t{i}"] = 1 - truth[f"t{i}"]
        label_rows.append(label(f"t{i}", truth[f"t{i}"], 400, 1))
    engine = connect(db_url)
    with engine.begin() as conn:
        conn.execute(decisions.insert(), rows)
        conn.execute(labels.insert(), label_rows)
    return engine, score, truth


def offline(score, truth, mature_minutes: int):
    clock = 309  # the stream's clock: the latest event time decided (minutes)
    common = range(50, 300)
    y, kept, pending = [], [], 0
    for i in common:
        tid = f"t{i}"
        if tid in truth:
            y.append(truth[tid])
        elif i <= clock - mature_minutes:
            y.append(0)
        else:
            pending += 1
            continue
        kept.append(i)
    y = np.array(y)
    out = {"pending": pending, "matured": len(kept), "frauds": int(y.sum())}
    flags = {}
    for v in (1, 2):
        p = score[v][kept]
        f = p >= THRESHOLD[v]
        flags[v] = f
        tp, fp = int(np.sum(f & (y == 1))), int(np.sum(f & (y == 0)))
        out[v] = {
            "tp": tp,
            "fp": fp,
            "tn": int(np.sum(~f & (y == 0))),
            "fn": int(np.sum(~f & (y == 1))),
            "precision": tp / (tp + fp),
            "auprc": average_precision_score(y, p),
            "roc_auc": roc_auc_score(y, p),
        }
    out["only_a"] = int(np.sum(flags[1] & ~flags[2]))
    out["frauds_only_b"] = int(np.sum(~flags[1] & flags[2] & (y == 1)))
    return out


@pytest.mark.parametrize("mature_minutes", [0, 60])
def test_compare_equals_offline_recomputation(known, mature_minutes):
    engine, score, truth = known
    report = compare(engine, 1, 2, timedelta(minutes=mature_minutes))
    expected = offline(score, truth, mature_minutes)
    assert report["transactions"] == 250  # only what both decided
    assert (report["pending"], report["matured"], report["frauds"]) == (
        expected["pending"],
        expected["matured"],
        expected["frauds"],
    )
    assert (expected["pending"] > 0) == (mature_minutes > 0)
    for v in (1, 2):
        got = report["models"][str(v)]
        for key in ("tp", "fp", "tn", "fn"):
            assert got[key] == expected[v][key], (v, key)
        assert got["precision"] == pytest.approx(expected[v]["precision"])
        assert got["auprc"] == pytest.approx(expected[v]["auprc"])
        assert got["roc_auc"] == pytest.approx(expected[v]["roc_auc"])
        assert got["pending"] == expected["pending"]
    assert report["agreement"]["only_a"] == expected["only_a"]
    assert report["agreement"]["frauds_caught_only_by_b"] == expected["frauds_only_b"]


def test_compare_cli_and_errors(known, db_url, capsys):
    import fraudstream_cli

    engine, _, _ = known
    assert fraudstream_cli.main(
        ["models", "compare", "1", "2", "--json", "--mature-after", "0s", "--db", db_url]) == 0
    assert json.loads(capsys.readouterr().out) == {
        **compare(engine, 1, 2), "mature_after": "0s", "mature_after_source": "--mature-after"}
    assert (
        fraudstream_cli.main(
            ["models", "compare", "2", "1", "--mature-after", "1h", "--db", db_url]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "v2 vs v1 on the 250 transactions both decided" in text and "auprc" in text
    assert "matured after 1h (from --mature-after)" in text
    with pytest.raises(FraudstreamError, match="no transaction in common"):
        compare(engine, 1, 9)
    with pytest.raises(FraudstreamError, match="two different versions"):
        compare(engine, 2, 2)


def test_a_person_promoting_records_the_live_evidence(known, db_url, home, tmp_path, capsys,
                                                      monkeypatch):
    import fraudstream_cli
    from store import registry

    engine, _, _ = known
    for v in (1, 2):  # v1 production, v2 candidate; a promotion verifies the artifacts' hashes
        staging = tmp_path / f"v{v}"
        staging.mkdir()
        (staging / "weights.json").write_text("{}")
        registry.register(engine, staging, strategy="weighted", threshold=THRESHOLD[v],
                          threshold_policy="max-f1", metrics={}, data_sha256="-")
    monkeypatch.setenv("FRAUDSTREAM_MATURE_AFTER", "1h")  # the deployment's label window
    assert fraudstream_cli.main(["models", "promote", "2", "--by", "carol", "--db", db_url]) == 0
    (row,) = registry.promotion_history(engine)
    assert (row.version, row.previous_version, row.decided_by) == (2, 1, "person:carol")
    live = compare(engine, 2, 1, timedelta(hours=1))
    assert live["pending"] > 0  # the window mattered
    assert row.comparison == {"live": live}
    start = row.window_start if row.window_start.tzinfo else row.window_start.replace(tzinfo=UTC)
    assert start.isoformat() == live["window"]["start"] == EPOCH.replace(minute=50).isoformat()
    capsys.readouterr()
    fraudstream_cli.main(["models", "show", "2", "--db", db_url])
    out = capsys.readouterr().out
    assert "last decision: promoted by person:carol" in out and "live evidence on events" in out
    assert "frauds, matured after 1h)" in out  # the window the evidence was judged on
