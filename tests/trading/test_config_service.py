"""Config service: zero-query reads, cross-process coherence through the shared stamp, stampedes, TTL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from tests.concurrency import run_in_threads
from trading.config_schema import DEFINITIONS
from trading.models import SystemConfig
from trading.services import cache_stats
from trading.services import config as config_service
from trading.services.config_defaults import ensure_default_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALL_KEYS = list(DEFINITIONS)
# A sync interval no test outlives: the stamp check happens only when a test moves the clock.
NO_SYNC = {"CONFIG_CACHE_SYNC_INTERVAL": 3600, "CACHE_STATS_FLUSH_INTERVAL": 3600}


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:  # stands in for the ``time`` module inside Django's cache backends
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(config_service, "clock", clock)
    config_service._state.last_check_at = float("-inf")
    return clock


@pytest.fixture(autouse=True)
def _fresh_stats():
    cache_stats.reset()
    yield
    cache_stats.reset()


def shared_generation():
    return caches["shared"].get(config_service.GENERATION_KEY)


def config_queries(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if "trading_systemconfig" in query["sql"]]


def stamp_queries(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if "django_shared_cache" in query["sql"]]


# ------------------------------------------------------------------ query counting


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_after_warm_up_a_thousand_reads_make_no_query(django_assert_num_queries):
    with CaptureQueriesContext(connection) as captured:
        loaded = config_service.warm_up()
    assert loaded == len(DEFINITIONS)
    assert len(config_queries(captured)) == 1  # every row in one query

    with django_assert_num_queries(0):
        values = [config_service.get_value(ALL_KEYS[index % len(ALL_KEYS)]) for index in range(1000)]
    assert values[ALL_KEYS.index("min_confidence")] == Decimal("0.6")
    assert config_service.stats()["hits"] == 1000


@pytest.mark.django_db(transaction=True)
@override_settings(**NO_SYNC)
def test_after_a_save_the_next_read_makes_one_query_then_none(django_assert_num_queries):
    # transaction=True: the save commits, so the stamp is bumped exactly as in production.
    # The sync interval is 3600 s here so no stamp check lands inside a counted block;
    # the writing process does not need one - its own save starts a new local epoch.
    ensure_default_config()
    config_service.warm_up()
    config_service.set_value("min_confidence", "0.75")

    with django_assert_num_queries(1):
        assert config_service.get_value("min_confidence") == Decimal("0.75")
    with django_assert_num_queries(0):
        for _ in range(1000):
            config_service.get_value("stop_loss_pct")


@pytest.mark.django_db
@override_settings(CONFIG_CACHE_SYNC_INTERVAL=0.5, CACHE_STATS_FLUSH_INTERVAL=3600)
def test_the_stamp_is_checked_at_most_once_per_sync_interval(fake_clock):
    config_service.warm_up()
    with CaptureQueriesContext(connection) as captured:
        for _ in range(63):
            fake_clock.advance(1 / 128)  # binary-exact steps: 63/128 s < 0.5 s
            config_service.get_value("trading_enabled")
    assert stamp_queries(captured) == []  # within the interval: no check, pure locmem

    with CaptureQueriesContext(connection) as captured:
        fake_clock.advance(1 / 128)  # exactly 0.5 s since the last check
        for _ in range(100):
            config_service.get_value("trading_enabled")
    assert len(stamp_queries(captured)) == 1  # one small query per interval, never per read
    assert config_queries(captured) == []  # nothing changed: no reload


@pytest.mark.django_db
@override_settings(CONFIG_CACHE_SYNC_INTERVAL=0.5, CACHE_STATS_FLUSH_INTERVAL=3600)
def test_a_change_published_by_another_process_is_picked_up_at_the_next_check(fake_clock):
    config_service.warm_up()
    assert config_service.get_value("stop_loss_pct") == Decimal("5")
    # What another process does: commit the row (no signal reaches us) and bump the stamp.
    SystemConfig.objects.filter(key="stop_loss_pct").update(value="7.5")
    config_service.bump_generation()  # (bump_generation alone does not tell this process)

    fake_clock.advance(0.4)
    assert config_service.get_value("stop_loss_pct") == Decimal("5")  # within the interval: cached
    fake_clock.advance(0.1)
    with CaptureQueriesContext(connection) as captured:
        assert config_service.get_value("stop_loss_pct") == Decimal("7.5")
    assert len(config_queries(captured)) == 1


@pytest.mark.django_db
@override_settings(CONFIG_CACHE_SYNC_INTERVAL=0.5, CACHE_STATS_FLUSH_INTERVAL=3600)
def test_an_unreadable_shared_store_keeps_serving_and_leaves_the_transaction_usable(fake_clock):
    config_service.warm_up()
    broken_shared = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "table_that_does_not_exist",
    }
    with override_settings(CACHES={**_caches_setting(), "shared": broken_shared}):
        fake_clock.advance(1)
        assert config_service.get_value("min_confidence") == Decimal("0.6")
        # the failed stamp query ran in a savepoint: this test's transaction still works
        assert SystemConfig.objects.filter(key="min_confidence").exists()


def _caches_setting():
    from django.conf import settings

    return settings.CACHES


# ------------------------------------------------------------------ cross-process

READER_PROCESS = textwrap.dedent(
    """
    import sys, time
    import django
    django.setup()
    from django.db import connection
    from trading.services.config import get_value

    queries = []
    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        first = get_value("min_confidence")
        print("ready", first, flush=True)
        start, reads = time.monotonic(), 0
        while time.monotonic() - start < 20:
            value = get_value("min_confidence")
            reads += 1
            if value != first:
                changed_at = time.time()
                config_queries = sum("trading_systemconfig" in sql for sql in queries)
                print("changed", value, changed_at, reads, len(queries), config_queries, flush=True)
                break
            time.sleep(0.005)
    connection.close()
    """
)


def _start_reader_process() -> subprocess.Popen:
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": url,
        "CONFIG_CACHE_SYNC_INTERVAL": "0.5",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-c", READER_PROCESS],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_edit_reaches_another_process_within_one_second(client, staff_user):
    ensure_default_config()
    reader = _start_reader_process()
    try:
        ready = reader.stdout.readline().split()
        assert ready == ["ready", "0.6"], reader.stderr.read()
        time.sleep(1.2)  # let the reader run a while in steady state before the edit

        client.force_login(staff_user)
        row = SystemConfig.objects.get(key="min_confidence")
        saved_at = time.time()  # taken before the request: the bound includes the admin save itself
        response = client.post(
            reverse("admin:trading_systemconfig_change", args=[row.pk]),
            {"value": "0.8", "description": row.description},
        )
        assert response.status_code == 302

        line = reader.stdout.readline().split()
        assert line[:2] == ["changed", "0.8"], reader.stderr.read()
        changed_at, reads, all_queries, config_reads = float(line[2]), int(line[3]), int(line[4]), int(line[5])
        assert changed_at - saved_at < 1.0
        # Hundreds of reads, but queries only for the stamp (about two a second) and two row loads.
        assert reads > 200
        assert config_reads == 2
        assert all_queries < reads / 10
    finally:
        reader.kill()
        reader.wait(timeout=10)
        reader.stdout.close()
        reader.stderr.close()


# ------------------------------------------------------------------ stampede


@pytest.mark.django_db(transaction=True)
@override_settings(**NO_SYNC)
def test_twenty_threads_reading_a_cold_key_make_one_query():
    ensure_default_config()
    config_service.warm_up()
    config_service.invalidate()  # cold
    cache_stats.reset()
    loads, barrier = [], threading.Barrier(20)

    def slow_count(execute, sql, params, many, context):
        if "trading_systemconfig" in sql:
            loads.append(sql)
            time.sleep(0.05)  # a slow database: every other thread arrives while this one loads
        return execute(sql, params, many, context)

    def reader():
        with connections["default"].execute_wrapper(slow_count):
            barrier.wait()
            return config_service.get_value("volatility_threshold_pct")

    results, errors = run_in_threads(reader, 20)
    assert errors == []
    assert results == [Decimal("3")] * 20
    assert len(loads) == 1
    assert config_service.stats()["misses"] == 1
    assert config_service.stats()["hits"] == 19


def test_get_or_set_runs_the_factory_once_for_concurrent_callers():
    calls, barrier = [], threading.Barrier(20)

    def factory():
        calls.append(1)
        time.sleep(0.05)
        return {"computed": True}

    def caller():
        barrier.wait()
        return config_service.get_or_set("derived-thing", factory)

    results, errors = run_in_threads(caller, 20)
    assert errors == []
    assert len(calls) == 1
    assert results == [{"computed": True}] * 20
    assert config_service.get_or_set("derived-thing", lambda: "never called") == {"computed": True}


# ------------------------------------------------------------------ TTL, invalidate, stats


@pytest.mark.django_db
@override_settings(CONFIG_CACHE_TTL=60, **NO_SYNC)
def test_entries_expire_after_the_ttl(monkeypatch):
    import django.core.cache.backends.base as base_backend
    import django.core.cache.backends.locmem as locmem_backend

    wall_clock = FakeClock(start=2_000_000_000.0)
    monkeypatch.setattr(locmem_backend, "time", wall_clock)
    monkeypatch.setattr(base_backend, "time", wall_clock)
    config_service.warm_up()
    # a change nobody announced (direct SQL): only the TTL safety net can bring it in
    SystemConfig.objects.filter(key="order_amount_krw").update(value="50000")

    wall_clock.advance(59)
    assert config_service.get_value("order_amount_krw") == Decimal("100000")
    wall_clock.advance(2)
    assert config_service.get_value("order_amount_krw") == Decimal("50000")


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_invalidate_one_key_reloads_that_key_only_when_read(django_assert_num_queries):
    config_service.warm_up()
    SystemConfig.objects.filter(key__in=["stop_loss_pct", "take_profit_pct"]).update(value="9")

    config_service.invalidate("stop_loss_pct")
    with django_assert_num_queries(0):
        assert config_service.get_value("take_profit_pct") == Decimal("10")  # still cached
    with django_assert_num_queries(1):
        assert config_service.get_value("stop_loss_pct") == Decimal("9")


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_invalidate_all_reloads_everything_in_one_query(django_assert_num_queries):
    config_service.warm_up()
    SystemConfig.objects.filter(key__in=["stop_loss_pct", "take_profit_pct"]).update(value="9")

    config_service.invalidate()
    with django_assert_num_queries(1):
        values = config_service.get_many(["stop_loss_pct", "take_profit_pct", "trading_enabled"])
    assert values == {"stop_loss_pct": Decimal("9"), "take_profit_pct": Decimal("9"), "trading_enabled": True}


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_stats_count_hits_misses_and_the_hit_rate():
    config_service.invalidate()
    config_service.get_value("min_confidence")  # miss: loads every row
    for key in ("min_confidence", "stop_loss_pct", "trading_enabled"):
        config_service.get_value(key)  # hits
    config_service.get_or_set("derived", lambda: 1)  # miss
    config_service.get_or_set("derived", lambda: 2)  # hit

    stats = config_service.stats()
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (4, 2, 66.67)


def test_stats_of_a_process_that_read_nothing():
    stats = config_service.stats()
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (0, 0, 0.0)


# ------------------------------------------------------------------ invalidation sources


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_an_admin_save_bumps_the_stamp_after_commit(client, staff_user, django_capture_on_commit_callbacks):
    config_service.warm_up()
    assert config_service.get_value("take_profit_pct") == Decimal("10")
    before = shared_generation()
    client.force_login(staff_user)
    row = SystemConfig.objects.get(key="take_profit_pct")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:trading_systemconfig_change", args=[row.pk]),
            {"value": "12.5", "description": row.description},
        )
        assert response.status_code == 302
        assert shared_generation() == before  # not before commit: nobody may reload the old row
    assert len(callbacks) == 1
    assert shared_generation() == (before or 0) + 1
    assert config_service.get_value("take_profit_pct") == Decimal("12.5")


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_an_admin_edit_with_a_bad_value_writes_and_publishes_nothing(client, staff_user):
    config_service.warm_up()
    before = shared_generation()
    client.force_login(staff_user)
    row = SystemConfig.objects.get(key="volatility_window_minutes")
    url = reverse("admin:trading_systemconfig_change", args=[row.pk])
    for bad_value, message in [("ten", "must be a whole number"), ("0", "must be at least 1")]:
        response = client.post(url, {"value": bad_value, "description": row.description})
        assert response.status_code == 200
        assert message in response.content.decode()
    row.refresh_from_db()
    assert row.value == "10"
    assert shared_generation() == before
    assert config_service.get_value("volatility_window_minutes") == 10


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_deleting_a_row_falls_back_to_the_default(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        config_service.set_value("order_poll_timeout_s", 45)
    assert config_service.get_value("order_poll_timeout_s") == 45
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        SystemConfig.objects.get(key="order_poll_timeout_s").delete()
    assert len(callbacks) == 1
    assert config_service.get_value("order_poll_timeout_s") == 30


@pytest.mark.django_db
def test_set_many_validates_everything_first_and_writes_nothing_on_error():
    with pytest.raises(ValidationError) as raised:
        config_service.set_many({"min_confidence": "0.7", "stop_loss_pct": "abc", "typo": "1"})
    assert set(raised.value.message_dict) == {"stop_loss_pct", "typo"}
    assert SystemConfig.objects.get(key="min_confidence").value == "0.6"


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_set_many_publishes_one_change_for_the_batch(django_capture_on_commit_callbacks):
    config_service.warm_up()
    before = shared_generation() or 0
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = config_service.set_many({"min_confidence": "0.7", "stop_loss_pct": 4, "trading_paused": "yes"})
    assert result == {"min_confidence": Decimal("0.7"), "stop_loss_pct": Decimal("4"), "trading_paused": True}
    assert len(callbacks) == 1
    assert shared_generation() == before + 1
    assert config_service.get_many(["min_confidence", "trading_paused"]) == {
        "min_confidence": Decimal("0.7"),
        "trading_paused": True,
    }


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_migrate_publishes_a_change():
    before = shared_generation() or 0
    call_command("migrate", verbosity=0)
    assert shared_generation() == before + 1


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_a_write_is_visible_in_its_own_transaction_and_forgotten_when_rolled_back():
    config_service.warm_up()
    before = shared_generation()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        config_service.set_value("trading_enabled", False)
        assert config_service.get_value("trading_enabled") is False  # read-your-writes
        raise Abort

    assert config_service.get_value("trading_enabled") is True  # nothing uncommitted was cached
    assert shared_generation() == before


@pytest.mark.django_db
def test_a_stored_value_that_no_longer_parses_is_an_error_not_a_default():
    SystemConfig.objects.filter(key="trading_enabled").update(value="maybe")
    config_service.invalidate()
    with pytest.raises(ValidationError, match="Stored value of trading_enabled is invalid"):
        config_service.get_value("trading_enabled")
    assert config_service.get_value("min_confidence") == Decimal("0.6")  # the other keys still load


def test_an_unknown_key_is_refused():
    with pytest.raises(ValidationError, match="Unknown configuration key"):
        config_service.get_value("no_such_key")


@pytest.mark.django_db
@override_settings(**NO_SYNC)
def test_warm_up_is_free_when_the_cache_is_already_warm(django_assert_num_queries):
    # The job runner calls warm_up() at the start of every job: it must not reload each time.
    assert config_service.warm_up() == len(DEFINITIONS)
    with django_assert_num_queries(0):
        assert config_service.warm_up() == 0
    config_service.invalidate()
    with django_assert_num_queries(1):
        assert config_service.warm_up() == len(DEFINITIONS)
