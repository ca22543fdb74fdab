"""Prometheus metrics operators watch for the API."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

REQUESTS = Counter("beanpay_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "beanpay_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CACHE = Counter("beanpay_cache_requests_total", "Cache lookups by result", ["result"])  # hit, miss, error, bypass
CACHE_HIT, CACHE_MISS, CACHE_ERROR, CACHE_BYPASS = (CACHE.labels(r) for r in ("hit", "miss", "error", "bypass"))
CACHE_AVAILABLE = Counter("beanpay_cache_outages_total", "Times the cache was found unreachable")


@cache
def _counter(method: str, route: str, status: int) -> Counter:
    return REQUESTS.labels(method, route, str(status))


@cache
def _histogram(method: str, route: str) -> Histogram:
    return LATENCY.labels(method, route)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Label lookups are cached: routes, methods and statuses are few, and this runs on every request."""
    _counter(method, route, status).inc()
    _histogram(method, route).observe(seconds)
