"""Store on real SQLite and PostgreSQL: migrations, registry, fenced exactly-once batch commits."""

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, select

from schemas.errors import FraudstreamError
from scorer.process import ScoredBatch
from scorer.sink import write_batch
from store import registry
from store.counts import matured_counts
from store.db import SQLITE_CACHE_KIB, SQLITE_CHECKPOINT_PAGES, DatabaseUnavailable, connect
from store.queries import prune, recent_alerts
from store.tables import alerts, decisions, labels
from stream.offsets import BatchSuperseded, OffsetConflict, advance, load

ROOT = Path(__file__).resolve().parent.parent


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
    assert {"model_versions", "alerts", "decisions", "labels", "consumer_offsets",
            "alembic_version"} <= names
    assert "confusion_counts" not in names  # counts are computed from decisions and labels


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


@pytest.mark.parametrize("tamper", ["artifact", "manifest", "missing"])
def test_promote_refuses_a_tampered_model_with_one_line(db_url, tmp_path, home, capsys, tamper):
    """A model whose files changed after registration is never made production: `models
    promote` exits non-zero with one line and production, stages and history stay as they were
    (the gate's promotions go through the same check)."""
    import fraudstream_cli

    engine = connect(db_url)
    register(engine, tmp_path, home, "a", "one")
    register(engine, tmp_path, home, "b", "two")
    target = home / "models" / "2"
    if tamper == "artifact":
        (target / "threshold.json").write_text('{"threshold": 0.0}')
    elif tamper == "manifest":
        (target / "manifest.json").write_text("{}")
    else:
        (target / "model.keras").unlink()
    capsys.readouterr()
    assert fraudstream_cli.main(["models", "promote", "2", "--by", "eve", "--db", db_url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert "not promoted, production is unchanged: model 2" in err
    assert registry.get(engine).version == 1 and registry.get(engine, 2).stage == "candidate"
    assert registry.promotion_history(engine) == []
    with pytest.raises(registry.ArtifactIntegrityError, match="not promoted"):
        registry.promote(engine, 2, decided_by="gate", home=home)
    assert registry.get(engine).version == 1


T0 = datetime(2013, 9, 1, tzinfo=UTC)


def decision(tid, flagged, hours=0.0, version=1):
    return {"transaction_id": tid, "model_version": version, "score": 0.9 if flagged else 0.1,
            "threshold": 0.7, "flagged": flagged, "amount": 10.0,
            "event_time": T0 + timedelta(hours=hours), "source_topic": "t",
            "source_partition": 0, "source_offset": 0, "scored_at": datetime.now(UTC)}


def alert(tid, version=1):
    return {"transaction_id": tid, "model_version": version, "score": 0.9, "threshold": 0.7,
            "amount": 1.0, "time_s": 0.0, "source_topic": "t", "source_partition": 0,
            "source_offset": 0, "created_at": datetime.now(UTC)}


def label(tid, fraud, hours, label_id=None, source="chargeback"):
    return {"label_id": label_id or f"{tid}@{hours}", "transaction_id": tid,
            "is_fraud": int(fraud), "source": source,
            "observed_at": T0 + timedelta(hours=hours), "reason": None,
            "received_at": datetime.now(UTC), "source_topic": None, "source_partition": None,
            "source_offset": None}


def batch(decision_rows=(), alert_rows=(), label_rows=()):
    return ScoredBatch(scores=None, flagged=None, decision_rows=list(decision_rows),
                       alert_rows=list(alert_rows), alerts=[], label_rows=list(label_rows))


def commit(engine, expected, next_offsets, scored):
    with engine.begin() as conn:
        advance(conn, "g", expected, next_offsets, {"t": "id-1"})
        write_batch(conn, scored)


def test_batch_commit_is_atomic_idempotent_and_fenced(db_url, tmp_path, home):
    engine = connect(db_url)
    register(engine, tmp_path, home)
    tp0, tp1 = ("t", 0), ("t", 1)
    commit(engine, {}, {tp0: 10, tp1: 4},
           batch([decision("a", True), decision("b", True), decision("c", False)],
                 [alert("a"), alert("b")]))
    assert {k: v.next_offset for k, v in load(engine, "g", [tp0, tp1]).items()} == {
        tp0: 10, tp1: 4}
    assert load(engine, "g", [tp0])[tp0].topic_id == "id-1"
    # A zombie that still believes partition 0 is at offset 0 must not write its batch.
    with pytest.raises(OffsetConflict):
        commit(engine, {tp0: 0}, {tp0: 10}, batch([decision("z", True)], [alert("z")]))
    # A second first-insert of the same partition (two consumers racing) fails too.
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        commit(engine, {}, {tp1: 9}, batch([decision("y", False)]))
    # The rightful owner continues; re-delivered decisions and alerts are ignored.
    commit(engine, {tp0: 10}, {tp0: 12},
           batch([decision("b", True), decision("d", False)], [alert("b")]))
    with engine.connect() as conn:
        assert sorted(r.transaction_id for r in conn.execute(select(alerts))) == ["a", "b"]
        assert sorted(r.transaction_id for r in conn.execute(select(decisions))) == [
            "a", "b", "c", "d"]
    assert {k: v.next_offset for k, v in load(engine, "g", [tp0, tp1]).items()} == {
        tp0: 12, tp1: 4}
    assert len(recent_alerts(engine, limit=1)) == 1


def fenced_commit(engine, expected, next_offsets, scored, version):
    with engine.begin() as conn:
        advance(conn, "g", expected, next_offsets, {"t": "id-1"})
        write_batch(conn, scored, fence=version)


def test_batch_commit_is_fenced_on_the_production_version(db_url, tmp_path, home):
    """The production group's commit holds only while its model is production: a batch scored by
    a model that was production when it started and is not any more commits nothing (decisions,
    alerts, offsets); on PostgreSQL a promotion waits for an open fenced commit."""
    engine = connect(db_url)
    register(engine, tmp_path, home, "a", "one")
    register(engine, tmp_path, home, "b", "two")
    tp0 = ("t", 0)
    fenced_commit(engine, {}, {tp0: 2}, batch([decision("a", True)], [alert("a")]), 1)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        with engine.begin() as scorer:  # a fenced batch in flight holds the production row
            advance(scorer, "g", {tp0: 2}, {tp0: 3}, {"t": "id-1"})
            write_batch(scorer, batch([decision("b", False)]), fence=1)
            with engine.connect() as person, pytest.raises(OperationalError, match="lock"):
                person.execute(text("SET lock_timeout = '200ms'"))  # what a promotion does:
                person.execute(text("UPDATE model_versions SET stage = 'archived' "
                                    "WHERE stage = 'production'"))
    stored = 3 if engine.dialect.name == "postgresql" else 2
    registry.promote(engine, 2)
    with pytest.raises(BatchSuperseded, match="scored with model 1 but model 2 is production"):
        fenced_commit(engine, {tp0: stored}, {tp0: 9},
                      batch([decision("z", True, version=1)], [alert("z")]), 1)
    assert load(engine, "g", [tp0])[tp0].next_offset == stored  # nothing moved
    with engine.connect() as conn:
        assert "z" not in {r.transaction_id for r in conn.execute(select(decisions))}
        assert "z" not in {r.transaction_id for r in conn.execute(select(alerts))}
    fenced_commit(engine, {tp0: stored}, {tp0: 9}, batch([decision("z", True, version=2)]), 2)
    assert load(engine, "g", [tp0])[tp0].next_offset == 9


def test_counts_mature_latest_label_wins_and_orphans(db_url, tmp_path, home):
    engine = connect(db_url)
    register(engine, tmp_path, home)
    rows = [decision("f1", True, 0), decision("f2", False, 1), decision("g1", True, 2),
            decision("g2", False, 3), decision("new1", False, 40), decision("new2", True, 47),
            decision("f3", True, 48)]
    commit(engine, {}, {("t", 0): 7}, batch(rows, label_rows=[
        label("f1", True, 5), label("f2", True, 6), label("f3", True, 48),
        label("g1", True, 4), label("g1", False, 9, source="analyst"),  # corrected later
        label("ghost", True, 3)]))  # never scored: an orphan
    report = matured_counts(engine, timedelta(hours=24))
    (row,) = report.rows
    # As of 48h (latest event): 0..3h are mature; new1/new2 (40h, 47h) are pending.
    assert (row.tp, row.fp, row.tn, row.fn, row.pending) == (2, 1, 1, 1, 2)
    assert row.decisions == 7 and row.labelled == 4 and report.orphans == 1
    assert row.precision == pytest.approx(2 / 3) and row.recall == pytest.approx(2 / 3)
    # Replaying the same decisions and labels changes nothing.
    commit(engine, {("t", 0): 7}, {("t", 0): 14}, batch(rows, label_rows=[label("f1", True, 5)]))
    assert matured_counts(engine, timedelta(hours=24)).rows == [row]
    # With no window every unlabelled decision is genuine; by day splits cohorts.
    (now,) = matured_counts(engine).rows
    assert (now.tp, now.fp, now.tn, now.fn, now.pending) == (2, 2, 2, 1, 0)
    days = matured_counts(engine, by_day=True).rows
    assert [(d.day, d.decisions) for d in days] == [("2013-09-01", 4), ("2013-09-02", 2),
                                                   ("2013-09-03", 1)]
    # Retention: decisions before 2013-09-02 and labels observed before it go.
    gone = prune(engine, datetime(2013, 9, 2, tzinfo=UTC))
    assert (gone.decisions, gone.labels) == (4, 5)
    with engine.connect() as conn:
        assert conn.execute(select(labels.c.label_id)).scalars().all() == ["f3@48"]


def test_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        connect("postgresql+psycopg://u:secret@127.0.0.1:1/none", attempts=1)
    try:
        connect("postgresql+psycopg://u:secret@127.0.0.1:1/none", attempts=1)
    except DatabaseUnavailable as exc:
        assert "secret" not in str(exc)


def test_the_stream_clock_ignores_a_few_event_times_far_ahead_of_the_rest(db_url):
    """One stray event time (dated today in a replay of 2013, within the scorer's horizon) must
    not move the stream's clock and mature every pending decision at once; a stream that really
    moved on moves it."""
    from store.counts import stream_clock

    engine = connect(db_url)
    rows = [decision(f"d{i}", False, i * 0.01) for i in range(3000)]  # 0 .. 29.99 h
    clean_max = T0 + timedelta(hours=29.99)
    with engine.begin() as conn:
        conn.execute(decisions.insert(), rows)
    assert stream_clock(engine) == clean_max.replace(tzinfo=stream_clock(engine).tzinfo)
    with engine.begin() as conn:  # three strays: one in a thousand tolerated
        conn.execute(decisions.insert(), [decision(f"stray{i}", False, 24 * 365 * 13 + i)
                                          for i in range(3)])
    clock = stream_clock(engine)
    assert clock == clean_max.replace(tzinfo=clock.tzinfo)
    assert matured_counts(engine, timedelta(hours=24)).rows[0].pending == 2400 + 3
    with engine.begin() as conn:  # the stream moved on: a day of new events, 1000 of them
        conn.execute(decisions.insert(), [decision(f"n{i}", False, 48 + i * 0.024)
                                          for i in range(1000)])
    clock = stream_clock(engine)
    assert clock == (T0 + timedelta(hours=48 + 999 * 0.024)).replace(tzinfo=clock.tzinfo)


def scorer_rows(n):
    """The scorer's decision and inline-label rows of ``n`` events as it writes them (columns,
    event times computed for the batch: tricky ones included — microsecond ties, large times),
    and the same rows as mappings with ``event_time(time_s)`` datetimes (the reference)."""
    from types import SimpleNamespace

    from schemas.events import event_time
    from schemas.ids import derived_id
    from scorer.decode import DecodedBatch
    from scorer.process import INLINE_LABEL, decision_rows, label_rows

    times = [i * 3601.123457 + (i % 5) * 0.5e-6 for i in range(n - 6)] + [
        0.0, 5e-7, 1.5e-6, 2.5e-6, 172_792.0000005, 2_700_000_000.0000005]
    events = [{"transaction_id": f"s{i}", "amount": i / 3, "time_s": t,
               "is_fraud": None if i % 3 == 0 else i % 2} for i, t in enumerate(times)]
    records = [SimpleNamespace(topic="tx", partition=i % 3, offset=i) for i in range(n)]
    model = SimpleNamespace(version=1, threshold=0.7)
    scores = np.linspace(0, 1, n)
    now = datetime.now(UTC)
    batch = DecodedBatch(events, records)
    columns = decision_rows(batch, model, scores, scores >= 0.7, now)
    reference = [{"transaction_id": e["transaction_id"], "model_version": 1, "score": s,
                  "threshold": 0.7, "flagged": s >= 0.7, "amount": e["amount"],
                  "event_time": event_time(e["time_s"]), "source_topic": r.topic,
                  "source_partition": r.partition, "source_offset": r.offset, "scored_at": now}
                 for e, r, s in zip(events, records, scores.tolist(), strict=True)]
    assert list(columns) == reference  # read back as mappings, they are the same rows
    labelled = [(e, r) for e, r in zip(events, reference, strict=True)
                if e["is_fraud"] is not None]
    label_reference = [{"label_id": derived_id(INLINE_LABEL, r["transaction_id"]),
                        "transaction_id": r["transaction_id"], "is_fraud": e["is_fraud"],
                        "source": "replay", "observed_at": r["event_time"],
                        "reason": "is_fraud carried by the transaction event",
                        "received_at": now, "source_topic": r["source_topic"],
                        "source_partition": r["source_partition"],
                        "source_offset": r["source_offset"]} for e, r in labelled]
    return ({decisions: columns, labels: label_rows(batch, columns, now)},
            {decisions: reference, labels: label_reference})


def test_bulk_insert_stores_what_sqlalchemy_stores(db_url, tmp_path, home):
    """The bulk paths (SQLite: the driver's executemany of values in storage form; PostgreSQL:
    binary COPY from COPY_MIN_ROWS rows) store exactly what SQLAlchemy's own INSERT stores, and skip
    existing keys — rows given as mappings, and the scorer's rows as columns with event times
    computed per batch (SQLAlchemy is given the same rows with ``event_time(time_s)``
    datetimes). Values in storage form are read back raw (no result processing)."""
    from store.bulk import COPY_MIN_ROWS, insert_ignore

    engine = connect(db_url)
    register(engine, tmp_path, home)
    n = COPY_MIN_ROWS + 5
    other_zone = timezone(timedelta(hours=2))
    rows = {
        decisions: [decision(f"d{i}", i % 3 == 0, hours=i / 7) for i in range(n)],
        alerts: [{**alert(f"a{i}"), "explanation": [{"feature": "v14", "contribution": -1.5}]
                  if i % 2 else None, "created_at": datetime(2013, 9, 1, 12, tzinfo=UTC)
                  if i % 3 else datetime(2013, 9, 1, 14, tzinfo=other_zone)} for i in range(n)],
        labels: [label(f"t{i}", i % 2, i / 3, source="replay") for i in range(n)],
    }
    columns, reference = scorer_rows(2 * COPY_MIN_ROWS + 10)  # COPY-ed both (PostgreSQL)
    queries = {decisions: "SELECT * FROM decisions ORDER BY transaction_id",
               alerts: "SELECT * FROM alerts ORDER BY transaction_id",
               labels: "SELECT label_id, transaction_id, is_fraud, source, observed_at, reason, "
                       "received_at, source_topic, source_partition, source_offset FROM labels "
                       "ORDER BY seq"}
    stored = {}
    for how in ("sqlalchemy", "bulk"):
        with engine.begin() as conn:
            for table, table_rows in rows.items():
                if how == "bulk":
                    insert_ignore(conn, table, table_rows)
                    insert_ignore(conn, table, columns.get(table, []))
                    insert_ignore(conn, table, table_rows[::-1])  # all known: nothing changes
                    insert_ignore(conn, table, columns.get(table, []))  # (COPY's fallback)
                else:
                    conn.execute(table.insert(), table_rows + reference.get(table, []))
        with engine.begin() as conn:
            stored[how] = {t.name: conn.exec_driver_sql(q).all() for t, q in queries.items()}
            for table in rows:
                conn.execute(table.delete())
    assert {t: len(r) for t, r in stored["bulk"].items()} == {
        t.name: n + len(reference.get(t, [])) for t in rows}
    assert stored["bulk"] == stored["sqlalchemy"]


def test_sqlite_commits_are_durable(tmp_path):
    """README's promise: WAL with synchronous=FULL (every commit fsync-ed; NORMAL would lose the
    last commits on a power loss)."""
    engine = connect(f"sqlite:///{tmp_path / 'durable.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == \
            SQLITE_CHECKPOINT_PAGES
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB


def test_sqlite_commits_left_in_a_large_wal_survive_a_kill(tmp_path):
    """With checkpoints every SQLITE_CHECKPOINT_PAGES pages, more committed rows than SQLite's
    default 1,000 pages sit only in the WAL: a process killed there (no close, no checkpoint)
    loses none of them; the next connection reads them from the WAL."""
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    connect(url).dispose()  # migrated
    writer = textwrap.dedent(f"""
        import os
        from sqlalchemy import text
        from store.db import connect
        engine = connect({url!r})
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"))
        for start in range(0, 6000, 1000):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO filler (id, body) VALUES (:i, :b)"),
                             [{{"i": i, "b": "x" * 1000}} for i in range(start, start + 1000)])
        os._exit(0)  # like kill -9: no close, so no checkpoint on the way out
    """)
    subprocess.run([sys.executable, "-c", writer], check=True, cwd=ROOT)
    with connect(url).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM filler").scalar() == 6000
    with sqlite3.connect(tmp_path / "wal.db") as raw:  # outside any transaction
        _busy, frames, _moved = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames > 1000  # all of it was still in the WAL: SQLite's default checkpoint is off


@pytest.mark.parametrize("n", [3, 650])
def test_upsert_inserts_new_keys_and_updates_existing_ones(db_url, n):
    """``store.bulk.upsert`` (the keyed scorer's card windows; PostgreSQL from COPY_MIN_ROWS
    rows: COPY into a staging table, then one INSERT … SELECT … ON CONFLICT DO UPDATE) inserts
    the new keys, updates only the named columns of the existing ones, leaves other rows alone,
    and twice in one transaction leaves no staging rows behind to be written again."""
    from store.bulk import upsert
    from store.tables import card_state

    engine = connect(db_url)

    def row(group: str, card: int, latest: int) -> dict:
        return {"group_id": group, "customer_id": f"c{card}", "latest_us": latest,
                "times": np.arange(card % 5, dtype="<i8").tobytes(),
                "amounts": np.full(card % 3, latest / 7, dtype="<f8").tobytes()}

    keys, update = ["group_id", "customer_id"], ["latest_us", "times", "amounts"]
    with engine.begin() as conn:
        upsert(conn, card_state, [row("g", i, i) for i in range(n)], keys, update)
        upsert(conn, card_state, [row("other", i, -i) for i in range(n)], keys, update)
        upsert(conn, card_state, [row("g", i, 500 + i) for i in range(n // 3)], keys, update)
    with engine.begin() as conn:  # half the cards again (new windows), and as many new ones
        upsert(conn, card_state, [row("g", i, 1000 + i) for i in range(n // 2, n + n // 2)],
               keys, ["latest_us", "times"])
    with engine.connect() as conn:
        got = {(g, c): (latest, times, amounts) for g, c, latest, times, amounts in conn.execute(
            select(card_state.c.group_id, card_state.c.customer_id, card_state.c.latest_us,
                   card_state.c.times, card_state.c.amounts))}
    want = {}
    for i in range(n):
        want[("other", f"c{i}")] = tuple(row("other", i, -i).values())[2:]
        want[("g", f"c{i}")] = tuple(row("g", i, 500 + i if i < n // 3 else i).values())[2:]
    for i in range(n // 2, n + n // 2):
        new = row("g", i, 1000 + i)
        kept = want.get(("g", f"c{i}"), (None, None, new["amounts"]))[2]  # not in `update`
        want[("g", f"c{i}")] = (new["latest_us"], new["times"], kept)
    assert {k: (v[0], bytes(v[1]), bytes(v[2])) for k, v in got.items()} == want
    engine.dispose()
