"""``RequestMetrics`` counts every request, and keeps its label look-ups bounded whatever methods clients send."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from twitter_shared import web
from twitter_shared.web import RequestMetrics


def sample(metrics: RequestMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_requests_and_durations_are_counted() -> None:
    metrics = RequestMetrics()

    metrics.observe("GET", "/a", 200, 0.01)
    metrics.observe("GET", "/a", 200, 0.02)
    metrics.observe("GET", "/a", 404, 0.01)

    assert sample(metrics, "http_requests_total", method="GET", route="/a", status="200") == 2
    assert sample(metrics, "http_requests_total", method="GET", route="/a", status="404") == 1
    assert sample(metrics, "http_request_duration_seconds_count", method="GET", route="/a") == 3
    assert sample(metrics, "http_request_duration_seconds_sum", method="GET", route="/a") == pytest.approx(0.04)


def test_label_look_ups_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "MAX_KEPT_LABEL_SETS", 2)
    metrics = RequestMetrics()

    for method in ("GET", "PUT", "FOO", "BAR"):
        metrics.observe(method, "unmatched", 405, 0.001)
    metrics.observe("BAR", "unmatched", 405, 0.001)

    assert len(metrics._children) == 2
    assert sample(metrics, "http_requests_total", method="BAR", route="unmatched", status="405") == 2
    assert b'method="FOO"' in generate_latest(metrics.registry)
