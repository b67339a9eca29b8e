"""Keep Django's per-process connection pool from crossing ``fork()``.

django-q2 forks its workers. Django keeps one psycopg pool per process in a
class-level dict; a child that inherits it would share the parent's sockets.
After a fork the child forgets the inherited pool and connections *without
closing them* (closing would send Terminate on the parent's sockets) and
builds its own pool on first use.

It also holds the pool's checkout check, which recovers from a server restart
in about a second instead of one pool timeout per few dead connections.
"""

from __future__ import annotations

import os
from typing import Any

import structlog

logger = structlog.get_logger(__name__)

_inherited: list[Any] = []  # keeps inherited objects alive so GC never closes them
_installed = False


def forget_inherited_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except Exception:  # pragma: no cover - psycopg missing means SQLite only
        return
    pools = DatabaseWrapper._connection_pools
    if pools:
        _inherited.append(dict(pools))
        pools.clear()


def install_fork_guard() -> None:
    global _installed
    if not _installed:
        os.register_at_fork(after_in_child=forget_inherited_connections)
        _installed = True


def check_connection_and_purge_dead_idle(conn: Any) -> None:
    """Checkout check for the psycopg pool that clears out every dead idle connection at once.

    psycopg_pool's ``getconn`` sleeps with backoff (about 1, 2, 4 s) after each
    connection that fails its checkout check, so after a server restart one
    caller spends its whole pool timeout discarding the ~10 dead idle
    connections one at a time. At the first failure this also runs
    ``pool.check()``, which tests the idle connections and replaces the broken
    ones in the background, so ``getconn``'s retry about 1 s later gets a fresh
    connection. A healthy checkout costs the same one empty query as
    ``ConnectionPool.check_connection``; nothing runs on an idle system.
    """
    from psycopg_pool import ConnectionPool

    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # getconn sets it before calling the check
        if isinstance(pool, ConnectionPool):
            try:
                pool.check()
            except Exception:  # pragma: no cover - the checkout still fails cleanly below
                logger.warning("pool_check_failed", exc_info=True)
        raise


def use_purging_check(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created`` receiver: swap Django's checkout check for the one above.

    Django builds the pool itself and passes ``check=ConnectionPool.check_connection``
    when CONN_HEALTH_CHECKS is on (and ``check`` cannot also go in the pool
    options), so the swap happens on the pool object once it exists.
    """
    from psycopg_pool import ConnectionPool

    pool = getattr(connection, "pool", None)  # only PostgreSQL wrappers have one
    if isinstance(pool, ConnectionPool) and pool._check is ConnectionPool.check_connection:
        pool._check = check_connection_and_purge_dead_idle


def install_pool_recovery() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(use_purging_check, dispatch_uid="config.db_pool.use_purging_check")
