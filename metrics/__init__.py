"""Prometheus metrics of a fraudstream service: a thin module each service calls, not a service.

A service builds one metrics object — :class:`ConsumerMetrics` for any consumer on the shared
skeleton (:mod:`stream.consumer`), :class:`ScorerMetrics` for the scorer — each in its own
:class:`prometheus_client.CollectorRegistry`, hands it to its consumer, and calls
:func:`serve` to expose ``/metrics``. Without a metrics object the skeleton does nothing extra.

Names follow Prometheus conventions (``fraudstream_…_total`` counters, base units, ``_seconds``):

=================================================  ==========================================
``fraudstream_events_consumed_total{service}``     records committed (dead letters included)
``fraudstream_events_dead_lettered_total``         ``{service,reason}``, reason one of
                                                   :data:`DLQ_REASONS`
``fraudstream_batch_duration_seconds{service}``    histogram: poll → commit of one batch
``fraudstream_end_to_end_latency_seconds``         histogram ``{service}``: each record's Kafka
                                                   timestamp → its batch's commit
``fraudstream_consumer_lag{topic,partition}``      end offset − committed next offset
``fraudstream_retries_total{service,step}``        transient faults retried, by step
``fraudstream_events_scored_total``                scorer: events scored
``fraudstream_events_flagged_total``               scorer: events flagged (alerts)
``fraudstream_score``                              scorer: histogram of scores over [0, 1]
``fraudstream_model_info{version,threshold}``      scorer: 1 for the model in use
``fraudstream_model_expected_alert_rate``          scorer: flagged share on the validation split
``fraudstream_model_reloads_total``                scorer: model switches after the first load
``fraudstream_feature_psi{feature}``               scorer: PSI of each model input over the drift
                                                   window vs the train split (:mod:`metrics.drift`)
``fraudstream_score_psi``                          scorer: PSI of the scores, the same way
``fraudstream_drift_window_events``                scorer: events in the drift window
=================================================  ==========================================

Liveness is Prometheus' own ``up``; each registry also carries the process collector
(``process_cpu_seconds_total``, ``process_resident_memory_bytes``, …). Histograms that see a
whole batch at once (latencies per record, scores) are kept as numpy bucket counts (one
``searchsorted`` per batch) and exposed by a custom collector, so a batch of thousands costs
microseconds, not one locked ``observe`` each.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

PREFIX = "fraudstream"
M = TypeVar("M", bound="ConsumerMetrics")
#: The dead-letter reasons exported (a fixed set: a label's values must stay few).
DLQ_REASONS = ("empty", "oversized", "malformed", "schema_version", "invalid_field",
               "permanent_fault", "other")
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                   900.0, 3600.0)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
                 0.95, 0.99, 1.0)


def reason_kind(reason: str) -> str:
    """The short, bounded kind of a dead-letter reason (one of :data:`DLQ_REASONS`).

    ``"oversized: 20000 bytes > 16384"`` → ``oversized``; ``"event: Invalid JSON: …"`` →
    ``malformed``; ``"amount: Input should be >= 0"`` → ``invalid_field``;
    ``"permanent fault: database commit: …"`` → ``permanent_fault``.
    """
    text = reason.strip().lower()
    if text.startswith("permanent fault"):
        return "permanent_fault"
    if text.startswith("empty"):
        return "empty"
    if text.startswith("oversized"):
        return "oversized"
    head, sep, _ = text.partition(":")
    if not sep or not head:
        return "other"
    if head == "event":  # not JSON, or JSON but not an object
        return "malformed"
    if head == "schema_version":
        return "schema_version"
    if all(c.isalnum() or c in "._-" for c in head):
        return "invalid_field"
    return "other"


class BulkHistogram:
    """A histogram observed a batch of values at a time, exposed through a custom collector.

    ``observe_many(values, *label_values)`` adds a whole numpy array under a lock; a scrape
    reads the cumulative counts under the same lock.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float],
                 labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self.upper = np.array([*sorted(buckets), math.inf], dtype=np.float64)
        self._bounds = [floatToGoString(b) for b in self.upper]
        self._series: dict[tuple[str, ...], list[Any]] = {}  # labels -> [counts, sum]
        self._lock = threading.Lock()
        registry.register(self)

    def touch(self, *label_values: str) -> None:
        """Create the series (all zeros) so it is exported before its first observation."""
        with self._lock:
            self._series.setdefault(tuple(label_values),
                                    [np.zeros(len(self.upper), dtype=np.int64), 0.0])

    def observe_many(self, values: np.ndarray, *label_values: str) -> None:
        if len(values) == 0:
            return
        counts = np.bincount(np.searchsorted(self.upper, values, side="left"),
                             minlength=len(self.upper))[:len(self.upper)]
        total = float(values.sum())
        with self._lock:
            series = self._series.setdefault(
                tuple(label_values), [np.zeros(len(self.upper), dtype=np.int64), 0.0])
            series[0] += counts
            series[1] += total

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            snapshot = [(k, np.cumsum(c), s) for k, (c, s) in self._series.items()]
        for labels, cumulative, total in snapshot:
            family.add_metric(list(labels),
                              buckets=[(b, int(n)) for b, n in zip(self._bounds, cumulative,
                                                                     strict=True)],
                              sum_value=total)
        yield family


class ConsumerMetrics:
    """The metrics of one consumer on the shared skeleton (``service``: ``scorer``, ``labels``).

    :class:`stream.consumer.SqlConsumer` calls :meth:`committed`, :meth:`quarantined`,
    :meth:`batch_done`, :meth:`retried`, :meth:`recreated`, :meth:`set_lag` and
    :meth:`forget_partition`.
    """

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_start_time_seconds…
        self._consumed = Counter(f"{PREFIX}_events_consumed", "Records consumed and committed "
                                 "(dead-lettered ones included)", ["service"], registry=r)
        self._dead = Counter(f"{PREFIX}_events_dead_lettered", "Records dead-lettered, by "
                             "kind of reason", ["service", "reason"], registry=r)
        self._retries = Counter(f"{PREFIX}_retries", "Transient faults retried, by step",
                                ["service", "step"], registry=r)
        self._batch = Histogram(f"{PREFIX}_batch_duration_seconds", "One batch, poll to "
                                "commit", ["service"], buckets=BATCH_BUCKETS, registry=r)
        self._e2e = BulkHistogram(f"{PREFIX}_end_to_end_latency_seconds", "Each record's Kafka "
                                  "timestamp to the commit of its batch", LATENCY_BUCKETS,
                                  ["service"], r)
        self._lag = Gauge(f"{PREFIX}_consumer_lag", "End offset minus committed next offset",
                          ["topic", "partition"], registry=r)
        self._recreated = Counter(f"{PREFIX}_consumer_recreated", "Kafka consumers closed "
                                  "and replaced after being out of their group too long",
                                  ["service"], registry=r).labels(service)  # 0 from the start
        self.consumed = self._consumed.labels(service)
        self.batch_seconds = self._batch.labels(service)
        self._dead_by_kind = {k: self._dead.labels(service, k) for k in DLQ_REASONS}
        self._e2e.touch(service)

    # -- called by the consumer skeleton --------------------------------------------------
    def committed(self, records: Sequence[Any], effects: Any) -> None:
        """A batch (``records`` and its ``effects``, a :class:`stream.BatchEffects`) was
        committed just now."""
        self.consumed.inc(len(records))
        for letter in effects.dead:
            self._dead_by_kind[reason_kind(letter.reason)].inc()
        self._latencies(records)
        self.observe_effects(effects)

    def quarantined(self, record: Any) -> None:
        """One record was dead-lettered for a permanent fault and committed just now."""
        self.consumed.inc()
        self._dead_by_kind["permanent_fault"].inc()
        self._latencies([record])

    def batch_done(self, seconds: float) -> None:
        self.batch_seconds.observe(seconds)

    def retried(self, step: str) -> None:
        self._retries.labels(self.service, step.replace(" ", "_")).inc()

    def recreated(self) -> None:
        self._recreated.inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        try:
            self._lag.remove(topic, str(partition))
        except KeyError:
            pass

    # -- for subclasses ----------------------------------------------------------------------
    def observe_effects(self, effects: Any) -> None:
        """The part's own metrics of a committed batch (nothing for a plain consumer)."""

    # -- inside ------------------------------------------------------------------------------
    def _latencies(self, records: Sequence[Any]) -> None:
        stamps = np.fromiter((r.timestamp for r in records), dtype=np.float64,
                             count=len(records))
        stamps = stamps[stamps >= 0]  # -1: no timestamp (very old message format)
        self._e2e.observe_many(time.time() - stamps / 1000.0, self.service)


class ScorerMetrics(ConsumerMetrics):
    """The scorer's metrics: the consumer's plus scores, alerts and the model in use."""

    def __init__(self, service: str = "scorer", registry: CollectorRegistry | None = None,
                 drift_window_s: float = 3600.0) -> None:
        super().__init__(service, registry)
        r = self.registry
        self.scored = Counter(f"{PREFIX}_events_scored", "Events scored", registry=r)
        self.flagged = Counter(f"{PREFIX}_events_flagged", "Events flagged (alerts raised)",
                               registry=r)
        self._scores = BulkHistogram(f"{PREFIX}_score", "Scores of the events scored",
                                     SCORE_BUCKETS, [], r)
        self._scores.touch()
        self._model = Gauge(f"{PREFIX}_model_info", "1 for the model version and threshold in "
                            "use", ["version", "threshold"], registry=r)
        self._expected = Gauge(f"{PREFIX}_model_expected_alert_rate", "Share of events the "
                               "model in use flagged on its validation split", registry=r)
        self.reloads = Counter(f"{PREFIX}_model_reloads", "Model switches after the first "
                               "load", registry=r)
        self._model_labels: tuple[str, str] | None = None
        self.drift = DriftCollector(r, drift_window_s)

    def model_loaded(self, version: int, threshold: float,
                     expected_alert_rate: float | None = None) -> None:
        """The scorer now scores with ``version`` (a reload when a model was loaded before)."""
        labels = (str(version), f"{threshold:.6g}")
        if self._model_labels is not None:
            self._model.remove(*self._model_labels)
            self.reloads.inc()
        self._model.labels(*labels).set(1)
        self._model_labels = labels
        self._expected.set(math.nan if expected_alert_rate is None else expected_alert_rate)

    def observe_effects(self, effects: Any) -> None:
        stats: Mapping[str, int] = effects.stats
        self.scored.inc(stats.get("scored", 0))
        self.flagged.inc(stats.get("flagged", 0))
        scores = effects.scores
        if len(scores):
            self._scores.observe_many(np.asarray(scores, dtype=np.float64))
        sample = getattr(effects, "drift", None)  # scorer.process.DriftSample
        if sample is not None:
            self.drift.add(sample.reference, sample.inputs, np.asarray(scores), sample.times)


class DriftCollector:
    """The drift gauges, computed at scrape time from a :class:`metrics.drift.DriftWindow`
    (nothing is exported before a batch of a model with a drift reference was scored; a batch
    of a model with another reference — a hot reload — starts a new window)."""

    def __init__(self, registry: CollectorRegistry, window_s: float) -> None:
        self.window_s = window_s
        self.window: Any = None  # metrics.drift.DriftWindow
        self._lock = threading.Lock()
        registry.register(self)

    def add(self, reference: Any, inputs: np.ndarray, scores: np.ndarray,
            times: np.ndarray) -> None:
        from metrics.drift import DriftWindow

        with self._lock:
            if self.window is None or self.window.reference is not reference:
                self.window = DriftWindow(reference, self.window_s)
            self.window.add(inputs, scores, times)

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected lazily: the families exist only once a window does

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            report = None if self.window is None else self.window.psi()
        if report is None:
            return
        feature = GaugeMetricFamily(f"{PREFIX}_feature_psi", "PSI of each model input over the "
                                    "drift window (event time) against the train split",
                                    labels=["feature"])
        for name, value in report["feature_psi"].items():
            feature.add_metric([name], value)
        yield feature
        yield GaugeMetricFamily(f"{PREFIX}_score_psi", "PSI of the scores over the drift window "
                                "against the train split", value=report["score_psi"])
        yield GaugeMetricFamily(f"{PREFIX}_drift_window_events", "Events in the drift window",
                                value=report["events"])


def validation_alert_rate(model_metrics: Mapping[str, Any]) -> float | None:
    """The flagged share on the validation split at the chosen threshold, from a registered
    model's metrics (``{"val": {"threshold": {"tp": …, "fp": …, "tn": …, "fn": …}}}``)."""
    try:
        m = model_metrics["val"]["threshold"]
        tp, fp, tn, fn = (float(m[k]) for k in ("tp", "fp", "tn", "fn"))
    except (KeyError, TypeError, ValueError):
        return None
    total = tp + fp + tn + fn
    return (tp + fp) / total if total > 0 else None


def serve(metrics: ConsumerMetrics | CollectorRegistry, port: int,
          host: str = "127.0.0.1") -> Any:
    """Expose ``/metrics`` of ``metrics`` on ``host:port`` from a daemon thread; returns the
    server (``.shutdown()`` stops it)."""
    registry = metrics if isinstance(metrics, CollectorRegistry) else metrics.registry
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def metric_names(metrics: ConsumerMetrics) -> Iterable[str]:
    """The metric family names ``metrics`` exposes (for docs and tests)."""
    return sorted({family.name for family in metrics.registry.collect()})


# --------------------------------------------------------------------------- CLI glue

PORT_ENV, HOST_ENV = "FRAUDSTREAM_METRICS_PORT", "FRAUDSTREAM_METRICS_HOST"


def start_from_cli(port: int | None, host: str | None, make: Callable[[], M]) -> M | None:
    """Build the service's metrics with ``make`` and serve them when a port is given (argument
    or ``$FRAUDSTREAM_METRICS_PORT``); None, and nothing served, otherwise."""
    from schemas.errors import FraudstreamError

    if port is None and os.environ.get(PORT_ENV, "").strip():
        try:
            port = int(os.environ[PORT_ENV])
        except ValueError:
            raise FraudstreamError(f"${PORT_ENV} must be a port number, not "
                                   f"{os.environ[PORT_ENV]!r}") from None
    if port is None:
        return None
    if not 0 < port < 65536:
        raise FraudstreamError(f"metrics port must be 1..65535, not {port}")
    host = host or os.environ.get(HOST_ENV) or "127.0.0.1"
    metrics = make()
    try:
        serve(metrics, port, host)
    except OSError as exc:
        raise FraudstreamError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    logging.getLogger(__name__).info("metrics on http://%s:%d/metrics", host, port)
    return metrics
