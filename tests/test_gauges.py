"""The gauges `/metrics` reads from the served index at each scrape, over a stand-in index whose
figures are known."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recommender.serving.metrics import Metrics

GAUGES = {
    "recommender_index_articles",
    "recommender_list_refresh_lag_seconds",
    "recommender_log_lag_changes",
}


class Served:
    def __init__(self, size: int, age: float | None, lag: int) -> None:
        self.size, self.age, self.lag = size, age, lag

    def index_size(self) -> int:
        return self.size

    def list_age_seconds(self) -> float | None:
        return self.age

    def log_lag(self) -> int:
        return self.lag


def _gauges(metrics: Metrics) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in GAUGES
    }


def test_gauges_read_the_served_index_at_every_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    served = Served(173, 5400.0, 2)
    metrics = Metrics()
    metrics.track(served)
    assert _gauges(metrics) == {
        "recommender_index_articles": 173.0,
        "recommender_list_refresh_lag_seconds": 5400.0,
        "recommender_log_lag_changes": 2.0,
    }
    served.size, served.age, served.lag = 174, None, 0  # read again, not kept from before
    scraped = _gauges(metrics)
    assert scraped["recommender_index_articles"] == 174.0
    assert math.isnan(scraped["recommender_list_refresh_lag_seconds"])  # no stored lists
    assert scraped["recommender_log_lag_changes"] == 0.0
