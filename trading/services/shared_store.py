"""The ``shared`` cache every process sees (database table, or Redis when ``REDIS_URL`` is set).

Small helpers used by the config generation stamp and the cluster-wide cache
statistics, so both handle the database backend's quirks the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction

SHARED_CACHE_ALIAS = "shared"


def _database_alias(cache: DatabaseCache) -> str:
    return router.db_for_write(cache.cache_model_class)


def call(operation: Callable[[Any], Any]) -> Any:
    """Run ``operation(shared_cache)``; inside a caller's transaction (database backend), in a savepoint.

    A failing cache query inside a caller's transaction would otherwise abort
    that whole PostgreSQL transaction. Outside one (autocommit) nothing needs
    protecting, and the savepoint would only add two round trips.
    """
    cache = caches[SHARED_CACHE_ALIAS]
    if isinstance(cache, DatabaseCache):
        alias = _database_alias(cache)
        if connections[alias].in_atomic_block:
            with transaction.atomic(using=alias):
                return operation(cache)
    return operation(cache)


def in_caller_transaction() -> bool:
    """True when writing to the shared store now would happen inside someone's open transaction."""
    cache = caches[SHARED_CACHE_ALIAS]
    return isinstance(cache, DatabaseCache) and connections[_database_alias(cache)].in_atomic_block


def table_missing() -> bool:
    """True when the shared store is a database table that does not exist yet (before createcachetable)."""
    cache = caches[SHARED_CACHE_ALIAS]
    if not isinstance(cache, DatabaseCache):
        return False
    return cache._table not in connections[_database_alias(cache)].introspection.table_names()


def increment(cache: Any, key: str, delta: int = 1) -> int:
    """Increment a never-expiring counter, creating it when missing; returns the new value.

    Atomic on Redis (INCR). On the database backend ``incr`` is a read then a
    write, so two processes incrementing in the same instant can lose one
    delta; for a change stamp that is harmless (the value still changes), for
    statistics it makes cluster totals approximate.
    """
    try:
        value = cache.incr(key, delta)
    except ValueError:  # missing (fresh store, or evicted)
        if cache.add(key, delta, timeout=None):
            return delta
        value = cache.incr(key, delta)
    cache.touch(key, None)  # DatabaseCache.incr re-sets the default expiry; counters never expire
    return value
