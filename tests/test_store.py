"""Store on real SQLite and PostgreSQL: migrations, registry, fenced exactly-once batch commits."""

import json

import pytest
from sqlalchemy import inspect, select

from schemas.errors import FraudstreamError
from scorer.process import Counts
from scorer.sink import OffsetConflict, commit_batch, load_offsets
from store import registry
from store.db import DatabaseUnavailable, connect
from store.queries import counts, recent_alerts
from store.tables import alerts


def stage(tmp_path, name="staging", payload="weights"):
    d = tmp_path / name
    d.mkdir()
    (d / "model.keras").write_text(payload)
    (d / "threshold.json").write_text(json.dumps({"threshold": 0.7}))
    return d


def register(engine, tmp_path, home, name="s1", payload="w"):
    metrics = {"test": {"threshold": {"auc": 0.95}}}
    return registry.register(engine, stage(tmp_path, name, payload), strategy="weighted",
                             threshold=0.7, threshold_policy="max-f1", metrics=metrics,
                             data_sha256="ab" * 32, home=home)


def test_migrations_create_tables_and_are_idempotent(db_url):
    engine = connect(db_url)
    connect(db_url)  # second run: nothing to do, no error
    names = set(inspect(engine).get_table_names())
    assert {"model_versions", "alerts", "confusion_counts", "consumer_offsets",
            "alembic_version"} <= names


def test_registry_stages_promote_and_hashes(db_url, tmp_path, home):
    engine = connect(db_url)
    first = register(engine, tmp_path, home, "a", "one")
    second = register(engine, tmp_path, home, "b", "two")
    assert (first.version, first.stage) == (1, "production")
    assert (second.version, second.stage) == (2, "candidate")
    assert registry.get(engine).version == 1
    registry.promote(engine, 2)
    assert registry.get(engine).version == 2
    assert registry.get(engine, 1).stage == "archived"
    assert registry.verify(second, home) == home / "models" / "2"
    (home / "models" / "2" / "model.keras").write_text("tampered")
    with pytest.raises(registry.ArtifactIntegrityError, match="model.keras"):
        registry.verify(registry.get(engine, 2), home)
    manifest = home / "models" / "1" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("data_sha256", "data_sha256 "))
    with pytest.raises(registry.ArtifactIntegrityError, match="manifest"):
        registry.verify(registry.get(engine, 1), home)
    with pytest.raises(FraudstreamError, match="not registered"):
        registry.get(engine, 9)


def alert_row(tid, version=1):
    from datetime import UTC, datetime
    return {"transaction_id": tid, "model_version": version, "score": 0.9, "threshold": 0.7,
            "amount": 1.0, "time_s": 0.0, "is_fraud": 1, "source_topic": "t",
            "source_partition": 0, "source_offset": 0, "created_at": datetime.now(UTC)}


def test_batch_commit_is_atomic_idempotent_and_fenced(db_url, tmp_path, home):
    engine = connect(db_url)
    register(engine, tmp_path, home)
    tp0, tp1 = ("t", 0), ("t", 1)
    commit_batch(engine, group_id="g", model_version=1, expected={},
                 next_offsets={tp0: 10, tp1: 4}, alert_rows=[alert_row("a"), alert_row("b")],
                 counts=Counts(tp=1, fp=1, tn=12, fn=0))
    assert load_offsets(engine, "g", [tp0, tp1]) == {tp0: 10, tp1: 4}
    # A zombie that still believes partition 0 is at offset 0 must not count its batch.
    with pytest.raises(OffsetConflict):
        commit_batch(engine, group_id="g", model_version=1, expected={tp0: 0},
                     next_offsets={tp0: 10}, alert_rows=[alert_row("c")],
                     counts=Counts(tp=5))
    # A second first-insert of the same partition (two consumers racing) conflicts too.
    with pytest.raises(OffsetConflict):
        commit_batch(engine, group_id="g", model_version=1, expected={},
                     next_offsets={tp1: 9}, alert_rows=[], counts=Counts(tn=5))
    # The rightful owner continues; a re-delivered alert key is ignored, not duplicated.
    commit_batch(engine, group_id="g", model_version=1, expected={tp0: 10},
                 next_offsets={tp0: 12}, alert_rows=[alert_row("b")],
                 counts=Counts(tn=1, unlabelled=1))
    row = counts(engine)[0]
    assert (row["tp"], row["fp"], row["tn"], row["fn"], row["unlabelled"]) == (1, 1, 13, 0, 1)
    assert row["scored"] == 16 and row["precision"] == 0.5
    with engine.connect() as conn:
        ids = sorted(r.transaction_id for r in conn.execute(select(alerts)))
    assert ids == ["a", "b"]
    assert load_offsets(engine, "g", [tp0, tp1]) == {tp0: 12, tp1: 4}
    assert len(recent_alerts(engine, limit=1)) == 1


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        connect("postgresql+psycopg://u:secret@127.0.0.1:1/none", attempts=1)
    try:
        connect("postgresql+psycopg://u:secret@127.0.0.1:1/none", attempts=1)
    except DatabaseUnavailable as exc:
        assert "secret" not in str(exc)
