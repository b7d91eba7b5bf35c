"""The scorer: consume → decode → score → publish alerts/dead letters → commit to SQL.

Reads top-down; the pure steps live in :mod:`scorer.decode` and :mod:`scorer.process`, the
database effects in :mod:`scorer.sink`, and the consumer's lifecycle — offsets in the database,
fencing, retries, isolation of permanent faults, graceful stop — in :mod:`stream.consumer`,
which the label sink shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from schemas.errors import FraudstreamError
from schemas.keyed import INPUT_KEYED
from schemas.times import DEFAULT_MAX_FUTURE_SKEW_S, Horizon
from scorer.decode import decode_batch
from scorer.keyed import KeyedPipeline
from scorer.keyed_store import label_mark
from scorer.process import ScoreEffects, ScoringModel, score_batch, shadow_decisions
from scorer.reload import (
    PRODUCTION_GROUP,
    ModelReloader,
    ProductionFence,
    production_reloader,
    production_version,
)
from scorer.sink import write_batch
from store.columns import Columns
from stream import BatchEffects, ConsumerConfig, Left, Outgoing, SqlConsumer

if TYPE_CHECKING:
    from metrics import ScorerMetrics


@dataclass(frozen=True)
class ScoreConfig:
    bootstrap: str
    topic: str = "transactions"
    group_id: str = PRODUCTION_GROUP
    batch_size: int = 2000
    until_idle: float | None = None
    drain_wait_s: float = 60.0
    max_messages: int | None = None
    alerts_topic: str = "alerts"
    dlq_topic: str = "transactions.dlq"
    poll_timeout_ms: int = 500
    retry_limit_s: float = 300.0  # give up on an unreachable DB/broker after this long
    log_decisions: bool = True  # off only in the decision-log benchmark's reference run
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S  # later events are dead letters
    log_features: bool = False  # keyed: the feature vector with every decision (alerts: always)
    allowed_lateness_s: float = 3600.0  # keyed: how far behind its partition's clock an event
    # may be and still be scored (as of its own time); earlier ones are dead letters
    label_sink_group: str | None = None  # keyed: wait for this label sink (its labels_topic)
    labels_topic: str = "labels"

    def consumer(self) -> ConsumerConfig:
        return ConsumerConfig(
            bootstrap=self.bootstrap, topic=self.topic, group_id=self.group_id,
            dlq_topic=self.dlq_topic, client_id="fraudstream-scorer",
            batch_size=self.batch_size, until_idle=self.until_idle,
            drain_wait_s=self.drain_wait_s, max_messages=self.max_messages,
            poll_timeout_ms=self.poll_timeout_ms, retry_limit_s=self.retry_limit_s)


@dataclass
class ScoreSummary:
    model_version: int
    consumed: int = 0
    scored: int = 0
    flagged: int = 0
    dlq: int = 0
    isolated: int = 0
    conflicts: int = 0
    superseded: int = 0  # batches dropped uncommitted: production changed while they were scored
    topic_resets: int = 0
    recreated: int = 0  # Kafka consumers replaced after being out of their group too long
    reloads: int = 0  # model switches after a promotion (hot reload)
    shadow_version: int | None = None  # the shadow model (decisions logged, never alerted)
    shadow_scored: int = 0
    shadow_flagged: int = 0  # events the shadow would have flagged
    #: keyed: events put back to be re-read (their terminal windows were not closed yet)
    deferred: int = 0
    seconds: float = 0.0
    busy_seconds: float = 0.0
    busy_cpu_seconds: float = 0.0  # the process's CPU time over busy_seconds
    rate: float = 0.0
    left: list[Left] = field(default_factory=list)  # --until-idle gave up with these left

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ScorePipeline:
    """decode → score → effects, for one micro-batch of transaction records (pure given
    ``model``). With a ``reloader``, :meth:`before_batch` — called by the consumer between
    batches — may swap ``model`` for a newly promoted one; never inside a batch. With a
    ``fence`` (the production group) it checks production at every batch boundary (switch or
    stop: :class:`scorer.reload.ProductionFence`) and every commit is fenced on the version."""

    model: ScoringModel
    alerts_topic: str
    log_decisions: bool = True
    reloader: ModelReloader | None = None
    drift: bool = False  # keep model inputs for the drift window (metrics on)
    shadow: ScoringModel | None = None  # also scores every batch; decisions only, no alerts
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S  # events dated later: dead letters
    fence: ProductionFence | None = None

    def before_batch(self) -> None:
        if self.fence is not None:
            self.model = self.fence.check(self.model)
        elif self.reloader is not None:
            self.model = self.reloader.check()

    def process(self, records: Sequence[Any]) -> BatchEffects:
        batch = decode_batch(records, Horizon.from_wall_clock(self.max_future_skew_s))
        scored = score_batch(batch, self.model, drift=self.drift)
        alerts = [Outgoing(self.alerts_topic, a.transaction_id.encode(),
                           a.model_dump_json().encode()) for a in scored.alerts]
        shadow_rows = Columns({})
        stats = {"scored": len(batch.events), "flagged": len(scored.alerts)}
        # A shadow that became production (hot reload) would only repeat production's rows.
        if self.shadow is not None and self.shadow.version != self.model.version:
            shadow_rows, shadow_flagged = shadow_decisions(batch, self.shadow)
            stats |= {"shadow_scored": len(shadow_rows), "shadow_flagged": shadow_flagged}
        return ScoreEffects(
            publish=alerts, dead=batch.dead,
            write=partial(write_batch, scored=scored, log_decisions=self.log_decisions,
                          shadow_rows=shadow_rows,
                          fence=self.model.version if self.fence is not None else None),
            stats=stats,
            scores=scored.scores, drift=scored.drift)


class Scorer:
    """One member of the scorer consumer group."""

    def __init__(self, config: ScoreConfig, engine: Engine, model: ScoringModel,
                 metrics: ScorerMetrics | None = None,
                 expected_alert_rate: float | None = None,
                 reload_check: float | None = None,
                 shadow: ScoringModel | None = None) -> None:
        """``reload_check``: seconds between reads of the registry's production version (hot
        reload; only for a scorer started on ``production``); None: never reload. In the
        production group (:data:`PRODUCTION_GROUP`) production is read at every batch boundary
        instead, and a member that does not reload stops when it changes.
        ``shadow``: a second model that scores every batch too; its decisions are logged under
        its own version, never alerted or published."""
        reloader = None
        if reload_check is not None:
            reloader = production_reloader(engine, model, reload_check,
                                           partial(_switched, engine, metrics))
        fence = None
        if config.group_id == PRODUCTION_GROUP:
            fence = ProductionFence(config.group_id, partial(production_version, engine),
                                    reloader)
        self.pipeline: ScorePipeline | KeyedPipeline
        if shadow is not None and shadow.input != model.input:
            raise FraudstreamError(f"--shadow: model {shadow.version} takes {shadow.input} "
                                   f"events, model {model.version} {model.input}: a shadow "
                                   "scores the same events as the model it shadows")
        if model.input == INPUT_KEYED:  # behaviour features: per-card state, terminal windows
            self.pipeline = KeyedPipeline(
                model, engine, config.group_id, config.topic, config.alerts_topic,
                partial(self._partitions, config.topic),
                int(config.allowed_lateness_s * 1e6), config.log_decisions,
                config.log_features, reloader, config.max_future_skew_s, fence, shadow,
                None if config.label_sink_group is None else partial(
                    self._label_mark, engine, config.labels_topic, config.label_sink_group))
        else:
            self.pipeline = ScorePipeline(model, config.alerts_topic, config.log_decisions,
                                          reloader, drift=metrics is not None, shadow=shadow,
                                          max_future_skew_s=config.max_future_skew_s,
                                          fence=fence)
        self.consumer = SqlConsumer(config.consumer(), engine, self.pipeline, metrics)
        if metrics is not None:
            metrics.model_loaded(model.version, model.threshold, expected_alert_rate)

    def _partitions(self, topic: str) -> list[int]:
        """The topic's partitions, as the consumer's metadata knows them."""
        return sorted(self.consumer.consumer.partitions_for_topic(topic) or ())

    def _label_mark(self, engine: Engine, topic: str, group: str) -> int:
        """:func:`scorer.keyed_store.label_mark` of the label sink ``group`` on ``topic``, at
        the topic's end offsets now."""
        from kafka import TopicPartition

        consumer = self.consumer.consumer
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                        or ())]
        ends = consumer.end_offsets(tps) if tps else {}
        return label_mark(engine, group,
                          {(tp.topic, tp.partition): int(end) for tp, end in ends.items()})

    @property
    def model(self) -> ScoringModel:
        """The model in use (the latest one loaded, with hot reload)."""
        return self.pipeline.model

    def run(self) -> ScoreSummary:
        """Consume until stopped (signal, ``until_idle`` or ``max_messages``); return totals."""
        s = self.consumer.run()
        return ScoreSummary(
            model_version=self.model.version, consumed=s.consumed, scored=s.stats["scored"],
            flagged=s.stats["flagged"], dlq=s.dlq, isolated=s.isolated, conflicts=s.conflicts,
            superseded=s.superseded, topic_resets=s.topic_resets, recreated=s.recreated,
            reloads=self.pipeline.reloader.reloads if self.pipeline.reloader else 0,
            shadow_version=shadow.version if (shadow := getattr(self.pipeline, "shadow", None))
            else None,
            shadow_scored=s.stats["shadow_scored"], shadow_flagged=s.stats["shadow_flagged"],
            deferred=s.stats["deferred"], seconds=s.seconds, busy_seconds=s.busy_seconds,
            busy_cpu_seconds=s.busy_cpu_seconds, rate=s.rate, left=s.left)

    def request_stop(self) -> None:
        """Finish the current batch, commit, and return from :meth:`run`."""
        self.consumer.request_stop()


def _switched(engine: Engine, metrics: ScorerMetrics | None, model: ScoringModel) -> None:
    """Tell the metrics about a hot-reloaded model (its validation alert rate included)."""
    if metrics is None:
        return
    from metrics import validation_alert_rate
    from store import registry

    try:
        expected = validation_alert_rate(registry.get(engine, model.version).metrics)
    except Exception:  # noqa: BLE001 - metrics only
        expected = None
    metrics.model_loaded(model.version, model.threshold, expected)
