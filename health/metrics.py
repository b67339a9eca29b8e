"""Prometheus metrics of the whole system (served at /metrics).

Metric names and labels are a contract imported by the exchange client, the AI
provider, the config cache and the job wrapper.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment
*before* prometheus_client is first imported (gunicorn / the cluster get it from
their environment), every process writes its samples to files in that directory
and ``/metrics`` aggregates them with ``MultiProcessCollector``; see
``config/gunicorn.conf.py`` for the ``child_exit`` hook. The database pool
gauges are read at scrape time from the pool of the process that answers the
scrape (Django keeps one pool per process).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

API_REQUEST_DURATION = Histogram(
    "api_request_duration_seconds",
    "HTTP request duration by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0),
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Scheduled job run duration.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
JOB_FAILURES = Counter("job_failures_total", "Job runs that ended in failure.", ["job"])
CACHE_REQUESTS = Counter("cache_requests_total", "Cache lookups by namespace and result.", ["namespace", "result"])
AI_TOKENS = Counter("ai_tokens_total", "AI tokens used.", ["provider", "direction"])
AI_COST_KRW = Counter("ai_estimated_cost_krw_total", "Estimated AI cost in KRW.", ["provider"])
EXCHANGE_CALLS = Counter(
    "exchange_calls_total",
    "Exchange HTTP calls by rate-limit group, endpoint and outcome.",
    ["group", "endpoint", "outcome"],
)
EXCHANGE_RETRIES = Counter("exchange_retries_total", "Retries of exchange calls.", ["group"])
EXCHANGE_RATE_LIMITED = Counter(
    "exchange_rate_limited_total", "429 and 418 answers from the exchange.", ["group", "status"]
)


class DatabasePoolCollector(Collector):
    """Pool size / in-use / waiting gauges from psycopg_pool's ``get_stats()``, read at scrape time.

    Only a pool that already exists is read: a scrape never opens one.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size = GaugeMetricFamily("db_pool_size", "Connections currently in the pool.", labels=["alias"])
        in_use = GaugeMetricFamily("db_pool_in_use", "Pooled connections checked out.", labels=["alias"])
        maximum = GaugeMetricFamily("db_pool_max_size", "Configured pool maximum.", labels=["alias"])
        waiting = GaugeMetricFamily("db_pool_requests_waiting", "Callers waiting for a connection.", labels=["alias"])
        for alias, stats in pool_stats().items():
            pool_size = stats.get("pool_size", 0)
            size.add_metric([alias], pool_size)
            in_use.add_metric([alias], max(pool_size - stats.get("pool_available", 0), 0))
            maximum.add_metric([alias], stats.get("pool_max", 0))
            waiting.add_metric([alias], stats.get("requests_waiting", 0))
        yield from (size, in_use, maximum, waiting)


def pool_stats() -> dict[str, dict[str, int]]:
    """``get_stats()`` of every PostgreSQL pool this process has opened, by database alias."""
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except Exception:  # psycopg missing: no pool to report
        return {}
    return {alias: dict(pool.get_stats()) for alias, pool in list(DatabaseWrapper._connection_pools.items())}


_POOL_COLLECTOR = DatabasePoolCollector()
REGISTRY.register(_POOL_COLLECTOR)


def scrape_registry(multiprocess_dir: str | None) -> CollectorRegistry:
    """The registry to expose: this process's, or the aggregate of every process's files."""
    if not multiprocess_dir:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiprocess_dir)
    registry.register(_POOL_COLLECTOR)
    return registry


def exposition(multiprocess_dir: str | None = None) -> tuple[bytes, str]:
    """Prometheus text exposition and its content type."""
    return generate_latest(scrape_registry(multiprocess_dir)), CONTENT_TYPE_LATEST
