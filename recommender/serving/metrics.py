"""Prometheus metrics (prometheus-client) at `/metrics`: requests and latency per route, method
and status, the index size, how fresh the stored lists and the in-memory mirror are, and the
encoder's time and queue.

Each app has its own registry, so several apps in one process (tests) never share counters.
With several workers (`serve --workers N` sets PROMETHEUS_MULTIPROC_DIR, prometheus-client's
multiprocess mode) every process writes its counters and histograms to files there, and a
scrape of any worker adds them up across processes; the gauges read from the served index
(size, list age, log lag) are the answering worker's, the encode queue's the sum over live
workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import Scope

UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ENCODE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Served(Protocol):
    """What the gauges read from the served index, at every scrape."""

    def index_size(self) -> int: ...

    def list_age_seconds(self) -> float | None: ...

    def log_lag(self) -> int: ...


class ServedGauges(Collector):
    """The gauges read from the served index at every scrape, by the process scraped."""

    def __init__(self, served: Served) -> None:
        self.served = served

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = self.served.list_age_seconds()
        yield GaugeMetricFamily(
            "recommender_index_articles",
            "Articles in the loaded index",
            value=float(self.served.index_size()),
        )
        yield GaugeMetricFamily(
            "recommender_list_refresh_lag_seconds",
            "Age of the stored list computed longest ago: how far the periodic refresh lags "
            "(kept under RECOMMENDER_REFRESH_HOURS)",
            value=math.nan if age is None else age,
        )
        yield GaugeMetricFamily(
            "recommender_log_lag_changes",
            "Committed changes this process's in-memory mirror has not replayed yet",
            value=float(self.served.log_lag()),
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()  # this process's counters and histograms
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.exposed = self.registry  # what a scrape reads
        if multiprocess_dir:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "recommender_http_requests", "HTTP requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "recommender_http_request_duration_seconds",
            "Time from the request to the end of the response",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.encode_seconds = Histogram(
            "recommender_encode_seconds",
            "Time to encode a text query and rank its related stories",
            buckets=ENCODE_BUCKETS,
            registry=self.registry,
        )
        self.encode_waiting = Gauge(
            "recommender_encode_queue_requests",
            "Text queries waiting for the encoder or being encoded",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.writes_refused = Counter(
            "recommender_writes_refused",
            "Writes refused: the store cannot grow (507, store_full) or the index cannot be "
            "followed (503, index_unavailable)",
            ["reason"],
            registry=self.registry,
        )
        self.encode_refused = Counter(
            "recommender_encode_refused",
            "Text queries refused with 503 because the encode queue was full",
            registry=self.registry,
        )

    def track(self, served: Served) -> None:
        """Gauges read from `served` when scraped (NaN for a list age with no lists)."""
        self.exposed.register(ServedGauges(served))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.exposed)


def route_of(scope: Scope) -> str:
    """The route template (`/articles/{article_id}/related`), never the raw path: one series
    per route, whatever ids are asked for."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
