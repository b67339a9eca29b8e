"""The native psycopg pool is really in use on PostgreSQL, at READ COMMITTED."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection, connections

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
