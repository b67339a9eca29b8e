"""Cache statistics: per-namespace arithmetic, cluster-wide totals through the shared store, hit-rate alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import override_settings
from structlog.testing import capture_logs

from health.metrics import CACHE_REQUESTS
from trading.services import cache_stats
from trading.services import config as config_service

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NO_FLUSH = {"CACHE_STATS_FLUSH_INTERVAL": 3600, "CONFIG_CACHE_SYNC_INTERVAL": 3600}


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_stats(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(cache_stats, "clock", clock)
    cache_stats.reset()
    yield clock
    cache_stats.reset()


def published_counts(namespace: str) -> tuple[int, int]:
    """What this process has published to the shared store for ``namespace``."""
    record = caches["shared"].get(cache_stats._process_key()) or {"namespaces": {}}
    hits, misses = record["namespaces"].get(namespace, (0, 0))
    return hits, misses


def record_many(namespace: str, hits: int, misses: int) -> None:
    for _ in range(hits):
        cache_stats.record(namespace, True)
    for _ in range(misses):
        cache_stats.record(namespace, False)


@pytest.mark.django_db
@override_settings(**NO_FLUSH)
def test_snapshot_reports_hits_misses_and_hit_rate_per_namespace():
    before = cache_stats.snapshot()["namespaces"]["ticker"]
    record_many("ticker", 3, 1)
    record_many("balance", 0, 2)

    snapshot = cache_stats.snapshot()
    json.dumps(snapshot)  # the endpoint returns it as is
    assert snapshot["scope"] == "cluster"
    assert set(snapshot["namespaces"]) == {"config", "ticker", "balance"}
    process = snapshot["process"]["namespaces"]
    assert process["ticker"] == {"hits": 3, "misses": 1, "hit_rate": 75.0}
    assert process["balance"] == {"hits": 0, "misses": 2, "hit_rate": 0.0}
    assert process["config"] == {"hits": 0, "misses": 0, "hit_rate": 0.0}
    ticker = snapshot["namespaces"]["ticker"]
    assert (ticker["hits"], ticker["misses"]) == (before["hits"] + 3, before["misses"] + 1)
    assert snapshot["process"]["pid"] == os.getpid()


def test_record_feeds_the_prometheus_counter():
    hits = CACHE_REQUESTS.labels("ticker", "hit")
    misses = CACHE_REQUESTS.labels("ticker", "miss")
    hits_before, misses_before = hits._value.get(), misses._value.get()
    record_many("ticker", 5, 2)
    assert hits._value.get() - hits_before == 5
    assert misses._value.get() - misses_before == 2


@pytest.mark.django_db(transaction=True)
@override_settings(CACHE_STATS_FLUSH_INTERVAL=5, CONFIG_CACHE_SYNC_INTERVAL=3600)
def test_counts_are_published_to_the_shared_store_at_most_once_per_interval(_fresh_stats):
    clock = _fresh_stats
    record_many("balance", 4, 1)
    assert published_counts("balance") == (0, 0)  # nothing written on the hot path yet

    clock.now += 5
    cache_stats.record("balance", True)  # the first record after the interval publishes
    assert published_counts("balance") == (5, 1)
    assert cache_stats._process_key() in caches["shared"].get(cache_stats.REGISTRY_KEY)

    cache_stats.record("balance", True)
    assert published_counts("balance") == (5, 1)
    # this process's live counts are what the snapshot uses for it
    assert cache_stats.snapshot()["process"]["namespaces"]["balance"]["hits"] == 6


@pytest.mark.django_db
@override_settings(**NO_FLUSH)
def test_no_flush_inside_a_caller_transaction():
    record_many("ticker", 2, 0)
    with transaction.atomic():
        assert cache_stats.flush() is False
    assert published_counts("ticker") == (0, 0)
    assert cache_stats._dirty == {"ticker"}  # published at the next interval outside a transaction


@pytest.mark.django_db
@override_settings(**NO_FLUSH)
def test_an_unreadable_shared_store_falls_back_to_this_process(settings):
    record_many("ticker", 1, 1)
    broken = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "missing_table"}
    with override_settings(CACHES={**settings.CACHES, "shared": broken}):
        snapshot = cache_stats.snapshot()
    assert snapshot["scope"] == "process"
    assert snapshot["namespaces"]["ticker"] == {"hits": 1, "misses": 1, "hit_rate": 50.0}


READER_PROCESS = textwrap.dedent(
    """
    import django
    django.setup()
    from django.db import connection
    from trading.services import cache_stats
    for _ in range(40):
        cache_stats.record("ticker", True)
    for _ in range(10):
        cache_stats.record("ticker", False)
    assert cache_stats.flush()
    connection.close()
    """
)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@override_settings(**NO_FLUSH)
def test_snapshot_adds_up_what_other_processes_flushed():
    before = cache_stats.snapshot()
    record_many("ticker", 2, 0)  # this process, not flushed
    database = connection.settings_dict
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "2",
    }
    result = subprocess.run(
        [sys.executable, "-c", READER_PROCESS],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    after = cache_stats.snapshot()
    ticker, ticker_before = after["namespaces"]["ticker"], before["namespaces"]["ticker"]
    assert (ticker["hits"], ticker["misses"]) == (ticker_before["hits"] + 42, ticker_before["misses"] + 10)
    assert after["processes"] == before["processes"] + 1
    assert after["process"]["namespaces"]["ticker"] == {"hits": 2, "misses": 0, "hit_rate": 100.0}


def test_hit_rate_alert_is_logged_once_on_the_crossing_and_once_on_recovery():
    with capture_logs() as logs:
        record_many("ticker", 0, 50)  # 0 % but under the minimum number of requests
        record_many("ticker", 50, 0)  # 100 requests, 50 %: crosses below 80 %
        record_many("ticker", 0, 20)  # still below: no repeat
        record_many("ticker", 400, 0)  # 450/520 = 86.5 %: recovered
    alerts = [entry for entry in logs if entry["event"] == "cache_hit_rate_below_threshold"]
    recoveries = [entry for entry in logs if entry["event"] == "cache_hit_rate_recovered"]
    assert len(alerts) == 1
    assert alerts[0]["log_level"] == "warning"
    assert alerts[0]["namespace"] == "ticker"
    assert alerts[0]["threshold_pct"] == 80.0
    assert (alerts[0]["hits"], alerts[0]["misses"]) == (50, 50)
    assert len(recoveries) == 1


def test_a_healthy_namespace_never_alerts():
    with capture_logs() as logs:
        record_many("config", 990, 10)
    assert [entry for entry in logs if entry["event"].startswith("cache_hit_rate")] == []


@pytest.mark.django_db
@override_settings(**NO_FLUSH)
def test_the_alert_threshold_comes_from_config(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        config_service.set_value("cache_hit_rate_alert_pct", "95")
    cache_stats.flush()  # the threshold is refreshed with each flush attempt
    assert cache_stats.snapshot()["alert_threshold_pct"] == 95.0
    with capture_logs() as logs:
        record_many("balance", 90, 10)  # 90 %: fine at 80 %, below 95 %
    assert [entry["event"] for entry in logs] == ["cache_hit_rate_below_threshold"]
