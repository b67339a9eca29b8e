"""The native psycopg pool is really in use on PostgreSQL, at READ COMMITTED, and survives dead backends."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection, connections

from config.db_pool import check_connection_and_purge_dead_idle

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_pool_is_in_use_with_configured_sizes():
    connection.ensure_connection()
    pool = connection.pool
    assert pool is not None
    assert (pool.min_size, pool.max_size) == (10, 20)


def test_isolation_level_is_read_committed():
    with connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "read committed"


def test_twenty_sessions_at_once_and_the_twenty_first_times_out_clearly():
    connection.close()  # give the main thread's connection back to the pool
    pool = connection.pool
    saved_timeout = pool.timeout
    pool.timeout = 1.0
    holders = 20
    all_holding = threading.Barrier(holders + 1, timeout=30)
    release = threading.Event()
    results: list[str] = []
    lock = threading.Lock()

    def hold_a_session() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                results.append(f"ok:{pid}")
            all_holding.wait()
            release.wait(30)
        except Exception as error:  # pragma: no cover - reported through results
            with lock:
                results.append(f"error:{error}")
            all_holding.abort()
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=hold_a_session) for _ in range(holders)]
    try:
        for thread in threads:
            thread.start()
        all_holding.wait()
        assert len({r for r in results if r.startswith("ok:")}) == holders, results

        extra_outcome: list[BaseException] = []

        def twenty_first() -> None:
            started = time.monotonic()
            try:
                connections["default"].ensure_connection()
            except BaseException as error:
                extra_outcome.append(error)
                extra_outcome.append(time.monotonic() - started)
            finally:
                connections["default"].close()

        extra = threading.Thread(target=twenty_first)
        extra.start()
        extra.join(15)
        assert not extra.is_alive(), "the 21st session hung instead of timing out"
        error, waited = extra_outcome
        assert isinstance(error, OperationalError)
        assert "couldn't get a connection" in str(error)
        assert waited >= 0.9  # it waited for the pool, then gave up
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
        pool.timeout = saved_timeout


def _admin_connection() -> psycopg.Connection:
    """A connection outside Django's pool, as an operator's psql session would be."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
        connect_timeout=5,
    )


def test_the_pool_checks_checkouts_with_the_purging_check():
    connection.ensure_connection()
    assert connection.pool._check is check_connection_and_purge_dead_idle


def test_after_every_pooled_backend_is_killed_the_next_query_gets_a_fresh_connection_quickly():
    """What a PostgreSQL restart does to the pool, without restarting the shared server.

    Without the purging check, psycopg_pool's getconn sleeps 1, 2, 4 s... after
    each of the ~10 dead idle connections and the query times out after the
    pool timeout; with it, the first dead connection triggers ``pool.check()``.
    """
    pool = connection.pool
    connection.close()
    pool.wait(timeout=30)  # min_size idle connections, all of which will die
    application_name = connection.settings_dict["OPTIONS"]["application_name"]
    with _admin_connection() as admin:
        killed = {
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = %s AND pid <> pg_backend_pid()",
                [application_name],
            )
        }
        assert len(killed) >= pool.min_size
        for pid in killed:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [list(killed)]).fetchone()[0]:
            assert time.monotonic() < deadline, "terminated backends did not exit"
            time.sleep(0.05)

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        serving_pid = cursor.fetchone()[0]
    waited = time.monotonic() - started
    connection.close()

    assert serving_pid not in killed
    # ~1 s (one backoff step) with the purging check; without it >= the pool timeout or a PoolTimeout.
    assert waited < 4.0, f"the first query after the kill waited {waited:.1f} s"
    # The dead idle connections were all replaced, not left for later callers to trip over.
    for _ in range(pool.min_size):
        started = time.monotonic()
        connection.ensure_connection()
        connection.close()
        assert time.monotonic() - started < 0.5
