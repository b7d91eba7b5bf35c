"""The metrics module without a broker: dead-letter reason kinds, what a committed batch adds,
the model's info, and /metrics served over HTTP."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics import (
    DLQ_REASONS,
    ConsumerMetrics,
    ScorerMetrics,
    reason_kind,
    serve,
    start_from_cli,
    validation_alert_rate,
)
from producer.broker import free_port
from schemas.errors import FraudstreamError
from scorer.decode import decode_one
from stream import BatchEffects, DeadLetter
from tests.test_scorer_e2e import MALFORMED


@dataclass(frozen=True)
class Rec:
    offset: int
    timestamp: int  # ms since the epoch, as kafka-python gives it
    topic: str = "t"
    partition: int = 0
    key: bytes | None = None
    value: bytes | None = b"{}"


def samples(metrics: ConsumerMetrics) -> dict[tuple[str, tuple], float]:
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_reason_kinds_are_a_small_fixed_set() -> None:
    reasons = [decode_one(v) for v in MALFORMED]
    assert all(isinstance(r, str) for r in reasons)
    kinds = [reason_kind(r) for r in reasons]
    assert kinds == ["malformed", "empty", "malformed", "malformed", "malformed",
                     "invalid_field", "invalid_field", "oversized"]
    assert reason_kind("schema_version: Input should be less than or equal to 1") == \
        "schema_version"
    assert reason_kind("permanent fault: database commit: value too long") == "permanent_fault"
    assert reason_kind("something ~ odd: x") == "other" and reason_kind("???") == "other"
    assert set(kinds) <= set(DLQ_REASONS)


def test_a_committed_batch_counts_consumed_dead_latency_scores() -> None:
    m = ScorerMetrics()
    m.model_loaded(3, 0.8125, expected_alert_rate=0.002)
    now_ms = int(time.time() * 1000)
    records = [Rec(i, now_ms - 2000) for i in range(10)]
    effects = BatchEffects(
        dead=[DeadLetter(records[0], "empty message"),
              DeadLetter(records[1], "amount: Input should be >= 0")],
        stats={"scored": 8, "flagged": 2}, scores=np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9,
                                                            1.0]))
    m.committed(records, effects)
    m.quarantined(Rec(10, now_ms - 500))
    m.batch_done(0.2)
    m.retried("database commit")
    m.set_lag("t", 0, 42)
    s = samples(m)
    svc = (("service", "scorer"),)
    assert s[("fraudstream_events_consumed_total", svc)] == 11
    dead = {k[1]: v for k, v in s.items() if k[0] == "fraudstream_events_dead_lettered_total"}
    assert dead[(("reason", "empty"), ("service", "scorer"))] == 1
    assert dead[(("reason", "invalid_field"), ("service", "scorer"))] == 1
    assert dead[(("reason", "permanent_fault"), ("service", "scorer"))] == 1
    assert sum(dead.values()) == 3 and len(dead) == len(DLQ_REASONS)  # all kinds exported
    assert s[("fraudstream_events_scored_total", ())] == 8
    assert s[("fraudstream_events_flagged_total", ())] == 2
    assert s[("fraudstream_score_count", ())] == 8
    assert s[("fraudstream_score_bucket", (("le", "0.1"),))] == 2  # 0.0 and 0.1 (le: <=)
    assert s[("fraudstream_score_bucket", (("le", "1.0"),))] == 8
    assert s[("fraudstream_score_sum", ())] == pytest.approx(3.7)
    e2e = "fraudstream_end_to_end_latency_seconds"
    assert s[(f"{e2e}_count", svc)] == 11
    assert 10 * 2.0 + 0.5 <= s[(f"{e2e}_sum", svc)] < 10 * 2.0 + 0.5 + 11 * 5
    assert s[(f"{e2e}_bucket", (("le", "1.0"), ("service", "scorer")))] == 1
    assert s[("fraudstream_batch_duration_seconds_count", svc)] == 1
    assert s[("fraudstream_retries_total",
              (("service", "scorer"), ("step", "database_commit")))] == 1
    assert s[("fraudstream_consumer_lag", (("partition", "0"), ("topic", "t")))] == 42
    assert s[("fraudstream_model_info", (("threshold", "0.8125"), ("version", "3")))] == 1
    assert s[("fraudstream_model_expected_alert_rate", ())] == 0.002
    assert s[("fraudstream_model_reloads_total", ())] == 0
    m.forget_partition("t", 0)
    m.model_loaded(4, 0.5)
    s = samples(m)
    assert ("fraudstream_consumer_lag", (("partition", "0"), ("topic", "t"))) not in s
    info = {k[1]: v for k, v in s.items() if k[0] == "fraudstream_model_info"}
    assert info == {(("threshold", "0.5"), ("version", "4")): 1}
    assert s[("fraudstream_model_reloads_total", ())] == 1


def test_a_plain_consumer_has_no_scorer_metrics() -> None:
    m = ConsumerMetrics("labels")
    m.committed([Rec(0, int(time.time() * 1000))], BatchEffects(stats={"labels": 1}))
    names = {k[0] for k in samples(m)}
    assert "fraudstream_events_consumed_total" in names
    assert not any(n.startswith(("fraudstream_events_scored", "fraudstream_score",
                                 "fraudstream_model")) for n in names)


def test_validation_alert_rate() -> None:
    metrics = {"val": {"threshold": {"tp": 8, "fp": 2, "tn": 985, "fn": 5}}}
    assert validation_alert_rate(metrics) == pytest.approx(0.01)
    assert validation_alert_rate({}) is None


def test_serve_exposes_metrics_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    m = ConsumerMetrics("labels")
    server = serve(m, port)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    finally:
        server.shutdown()
        server.server_close()
    assert b'fraudstream_events_consumed_total{service="labels"} 0.0' in body
    assert b"process_cpu_seconds_total" in body
    # Off unless asked for, by argument or environment; a bad value is a clear error.
    monkeypatch.delenv("FRAUDSTREAM_METRICS_PORT", raising=False)
    assert start_from_cli(None, None, lambda: ConsumerMetrics("x")) is None
    monkeypatch.setenv("FRAUDSTREAM_METRICS_PORT", "nope")
    with pytest.raises(FraudstreamError, match="port number"):
        start_from_cli(None, None, lambda: ConsumerMetrics("x"))
    with pytest.raises(FraudstreamError, match="1..65535"):
        start_from_cli(70000, None, lambda: ConsumerMetrics("x"))
