"""The scorer's database effects: one transaction per micro-batch (alerts, confusion counts and
consumer offsets together), fenced on the stored offsets so that no event counts twice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from scorer.process import Counts
from store.tables import alerts, confusion_counts, consumer_offsets

#: (topic, partition) -> next offset to read
Offsets = Mapping[tuple[str, int], int]


class OffsetConflict(RuntimeError):
    """Another consumer committed these partitions first; the batch was rolled back."""


def _insert_ignore(conn: Connection, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), list(rows))


def load_offsets(engine: Engine, group_id: str,
                 partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The stored next offsets of ``partitions`` for ``group_id`` (absent = never committed)."""
    wanted = set(partitions)
    with engine.connect() as conn:
        rows = conn.execute(select(consumer_offsets.c.topic, consumer_offsets.c.partition,
                                   consumer_offsets.c.next_offset)
                            .where(consumer_offsets.c.group_id == group_id)).all()
    return {(t, p): int(o) for t, p, o in rows if (t, p) in wanted}


def commit_batch(engine: Engine, *, group_id: str, model_version: int, expected: Offsets,
                 next_offsets: Offsets, alert_rows: Sequence[Mapping[str, Any]],
                 counts: Counts) -> None:
    """Write a batch's alerts, counts and offsets atomically.

    ``expected`` holds, per partition in the batch, the offset this consumer believes is stored
    (absent = no row yet). If another consumer moved it meanwhile, nothing is written and
    :class:`OffsetConflict` is raised.
    """
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            for (topic, partition), offset in next_offsets.items():
                key = (topic, partition)
                if key in expected:
                    moved = conn.execute(
                        update(consumer_offsets)
                        .where(consumer_offsets.c.group_id == group_id,
                               consumer_offsets.c.topic == topic,
                               consumer_offsets.c.partition == partition,
                               consumer_offsets.c.next_offset == expected[key])
                        .values(next_offset=offset, updated_at=now)).rowcount
                    if moved != 1:
                        raise OffsetConflict(f"{topic}[{partition}] moved past {expected[key]}")
                else:
                    conn.execute(consumer_offsets.insert().values(
                        group_id=group_id, topic=topic, partition=partition,
                        next_offset=offset, updated_at=now))
            _insert_ignore(conn, alerts, alert_rows)
            if counts.scored:
                _insert_ignore(conn, confusion_counts, [{
                    "model_version": model_version, "tp": 0, "fp": 0, "tn": 0, "fn": 0,
                    "unlabelled": 0, "updated_at": now}])
                c = confusion_counts.c
                conn.execute(update(confusion_counts)
                             .where(c.model_version == model_version)
                             .values({c.tp: c.tp + counts.tp, c.fp: c.fp + counts.fp,
                                      c.tn: c.tn + counts.tn, c.fn: c.fn + counts.fn,
                                      c.unlabelled: c.unlabelled + counts.unlabelled,
                                      c.updated_at: now}))
    except IntegrityError as exc:  # a concurrent first insert of the same offset row
        raise OffsetConflict(str(exc.orig)) from exc
