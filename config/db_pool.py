"""Keep Django's per-process connection pool from crossing ``fork()``.

django-q2 forks its workers. Django keeps one psycopg pool per process in a
class-level dict; a child that inherits it would share the parent's sockets.
After a fork the child forgets the inherited pool and connections *without
closing them* (closing would send Terminate on the parent's sockets) and
builds its own pool on first use.
"""

from __future__ import annotations

import os
from typing import Any

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
