"""Prometheus metrics of the service (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUESTS = Counter("filters_requests_total", "Requests answered, by model and HTTP status.", ["model", "status"])
REQUEST_SECONDS = Histogram(
    "filters_request_seconds", "Wall time of a request from admission to answer.", ["model"], buckets=_LATENCY_BUCKETS
)
QUEUE_SECONDS = Histogram(
    "filters_queue_seconds", "Time a request waited before its first item ran.", ["model"], buckets=_LATENCY_BUCKETS
)
COMPUTE_SECONDS = Histogram(
    "filters_compute_seconds", "Time one batch spent in the runtime.", ["model"], buckets=_LATENCY_BUCKETS
)
BATCH_SIZE = Histogram(
    "filters_batch_size", "Items per executed batch.", ["model"], buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128)
)
QUEUE_DEPTH = Gauge("filters_queue_depth", "Items (tiles, frames) waiting for a batch.", ["model"])
IN_FLIGHT = Gauge("filters_requests_in_flight", "Requests admitted and not yet answered.", ["model"])
DROPPED = Counter("filters_dropped_total", "Requests answered without running, by reason.", ["model", "reason"])
ITEMS_EXECUTED = Counter("filters_items_executed_total", "Items (tiles, frames) run by the runtime.", ["model"])
