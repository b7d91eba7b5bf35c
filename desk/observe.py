"""The desk's Prometheus metrics (``GET /metrics``, no login: counts only, no alert data).

``fraudstream_desk_requests_total{route,status}``, ``fraudstream_desk_request_duration_seconds``
(histogram, by route) and ``fraudstream_desk_changes_total{action}`` (claims, dispositions…;
``case_claim``, ``case_disposition``… for cases),
in the desk's own registry (one per app, so tests and several apps do not collide).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from metrics import PREFIX

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class DeskMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            f"{PREFIX}_desk_requests",
            "HTTP requests answered",
            ["route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_desk_request_duration_seconds",
            "time to answer a request",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.changes = Counter(
            f"{PREFIX}_desk_changes",
            "alert and case changes written, by action (case_* for cases)",
            ["action"],
            registry=self.registry,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
