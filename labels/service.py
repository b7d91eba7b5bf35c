"""``fraudstream labels consume``: decode → write labels, on the shared consumer skeleton
(offsets in the database, fenced, idempotent on ``label_id``, dead letters, retries, SIGTERM
finishes the batch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from labels.decode import decode_labels
from schemas.times import DEFAULT_MAX_FUTURE_SKEW_S, Horizon
from store.bulk import insert_ignore
from store.settle import chargeback_ids, settle_by_chargeback
from store.tables import labels
from stream import BatchEffects, ConsumerConfig, ConsumerSummary, SqlConsumer

if TYPE_CHECKING:
    from metrics import ConsumerMetrics


def write_labels(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert label rows; a ``label_id`` already stored is a duplicate delivery and is skipped.
    A chargeback saying fraud settles its transaction's unclosed alerts in the same database
    transaction (:mod:`store.settle`)."""
    insert_ignore(conn, labels, rows)
    settle_by_chargeback(conn, chargeback_ids(rows))


@dataclass(frozen=True)
class LabelPipeline:
    """decode → effects for one batch of label records (pure but for reading the wall clock);
    labels observed more than ``max_future_skew_s`` ahead of it are dead letters."""

    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S

    def process(self, records: Sequence[Any]) -> BatchEffects:
        decoded = decode_labels(records, Horizon.from_wall_clock(self.max_future_skew_s))
        return BatchEffects(dead=decoded.dead, write=partial(write_labels, rows=decoded.rows),
                            stats={"labels": len(decoded.rows)})


def consume_labels(config: ConsumerConfig, engine: Engine,
                   metrics: ConsumerMetrics | None = None,
                   max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S) -> ConsumerSummary:
    """Run one label-sink member until stopped; return its totals."""
    return SqlConsumer(config, engine, LabelPipeline(max_future_skew_s), metrics).run()
