"""GET /metrics: Prometheus exposition, request counting, pool gauges, multiprocess aggregation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from health.metrics import exposition

TOKEN = "metrics-token-0123456789"


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", HTTP_HOST="localhost", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def request_count(families: dict, route: str) -> float:
    return sum(
        sample.value
        for sample in families["api_request_duration_seconds"].samples
        if sample.name == "api_request_duration_seconds_count" and sample.labels.get("route") == route
    )


@pytest.mark.django_db
def test_metrics_parse_and_count_a_request(client):
    before = request_count(scrape(client), "/health/")
    client.get("/health/", HTTP_HOST="localhost")
    families = scrape(client)
    assert request_count(families, "/health/") == before + 1
    for name in (
        "api_request_duration_seconds",
        "job_duration_seconds",
        "job_failures",
        "cache_requests",
        "ai_tokens",
        "ai_estimated_cost_krw",
        "exchange_calls",
        "exchange_retries",
        "exchange_rate_limited",
    ):
        assert name in families, name


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pool_gauges_come_from_the_live_psycopg_pool(client):
    from django.db import connection

    connection.ensure_connection()  # the process's pool exists once a connection was taken
    families = scrape(client)
    size = {sample.name: sample.value for sample in families["db_pool_size"].samples}
    maximum = {sample.name: sample.value for sample in families["db_pool_max_size"].samples}
    assert size["db_pool_size"] >= 1
    assert maximum["db_pool_max_size"] == connection.pool.max_size
    assert "db_pool_in_use" in families


@pytest.mark.django_db
def test_metrics_require_the_token_when_one_is_configured(client, settings):
    settings.HEALTH_DETAIL_TOKEN = TOKEN
    assert client.get("/metrics", HTTP_HOST="localhost").status_code == 401
    assert client.get("/metrics", HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert "api_request_duration_seconds" in scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_multiprocess_mode_aggregates_samples_written_by_other_processes(tmp_path: Path):
    """Two real processes write job metrics in multiprocess mode; the scrape sums both."""
    script = (
        "from prometheus_client import Counter, Histogram\n"
        "failures = Counter('job_failures_total', 'x', ['job'])\n"
        "duration = Histogram('job_duration_seconds', 'x', ['job'])\n"
        "failures.labels(job='sync_pending_orders').inc()\n"
        "duration.labels(job='sync_pending_orders').observe(0.2)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    payload, _content_type = exposition(str(tmp_path))
    families = {family.name: family for family in text_string_to_metric_families(payload.decode())}
    failures = [s for s in families["job_failures"].samples if s.labels == {"job": "sync_pending_orders"}]
    assert [sample.value for sample in failures] == [2.0]
    count = [s for s in families["job_duration_seconds"].samples if s.name == "job_duration_seconds_count"]
    assert [sample.value for sample in count] == [2.0]
