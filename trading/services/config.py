"""Config service: typed ``SystemConfig`` values served from Django's ``config`` cache.

Why it looks like this:

* Reads are on the hot path of every job, so a steady-state read is a pure
  per-process locmem lookup (alias ``config``, TTL ``settings.CONFIG_CACHE_TTL``):
  zero database queries.
* locmem lives in one process, so coherence across web workers and django-q2
  workers comes from a small **generation stamp** in the ``shared`` cache (a
  database table, or Redis when ``REDIS_URL`` is set). Every committed change
  bumps it; each process looks at it at most once per
  ``settings.CONFIG_CACHE_SYNC_INTERVAL`` seconds (monotonic clock) and, when it
  moved, starts a fresh local namespace. A change is therefore seen everywhere
  within one sync interval (0.5 s), well inside the 1 s bound. The TTL is only
  the safety net.
* Local keys are namespaced by a local epoch, so a slow loader that read the
  database before a change can never publish its stale rows into the new epoch.
* The first miss of an epoch loads every row in ONE query (warm-up for free in
  every process, including forked workers); concurrent misses wait on one lock
  and double-check, so a stampede costs one query.
* The stamp is bumped only after the writing transaction commits
  (``transaction.on_commit``): another process can never reload the old row and
  keep it for an hour. Inside the writer's own open transaction the service reads
  the database directly (read-your-writes, nothing uncommitted is cached), and a
  rolled-back write drops this process's epoch.

Bulk changes go through :func:`set_many` (one stamp bump); ``QuerySet.update``
bypasses signals and must not be used on ``SystemConfig``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.test.signals import setting_changed

from trading.config_schema import DEFINITIONS, get_definition
from trading.services import cache_stats, shared_store

logger = structlog.get_logger(__name__)

CACHE_ALIAS = "config"
GENERATION_KEY = "config:generation"
NAMESPACE = "config"
_ROWS_LOCK_NAME = "@all-rows"
_LOADED_MARKER = "@loaded"
_MISSING = object()
_PENDING_ATTRIBUTE = "_config_pending_publishes"

clock: Callable[[], float] = time.monotonic  # injectable for tests


class _InvalidStoredValue:
    """A stored row that no longer parses: reading it raises instead of guessing a default."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _SyncState:
    """What this process knows about the shared generation stamp."""

    def __init__(self) -> None:
        self.check_lock = threading.Lock()
        self.epoch_lock = threading.Lock()
        self.key_locks_guard = threading.Lock()
        self.key_locks: dict[str, threading.Lock] = {}
        self.epoch = 0  # local namespace; bumped on every invalidation seen here
        self.seen_generation: Any = _MISSING
        self.last_check_at = float("-inf")
        self.stamp_checks = 0
        self.batch = threading.local()


_state = _SyncState()
# Hot-path lookups resolved once (``settings.X`` and ``caches[alias]`` cost microseconds each);
# refreshed when a test overrides settings.
_resolved: dict[str, Any] = {}
_pending_publishes = [0]  # writes awaiting commit in any thread: 0 keeps the read path fast


def _setting(name: str) -> Any:
    try:
        return _resolved[name]
    except KeyError:
        value = _resolved[name] = getattr(settings, name)
        return value


def _local_cache() -> Any:
    try:
        return _resolved["cache"]
    except KeyError:
        cache = _resolved["cache"] = caches[CACHE_ALIAS]  # LocMemCache is thread-safe
        return cache


def _forget_resolved(**kwargs: Any) -> None:
    _resolved.clear()


setting_changed.connect(_forget_resolved, dispatch_uid="trading.config.settings_changed")


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at fork() time would stay locked forever in the child.
    _state.check_lock = threading.Lock()
    _state.epoch_lock = threading.Lock()
    _state.key_locks_guard = threading.Lock()
    _state.key_locks = {}


os.register_at_fork(after_in_child=_reset_locks_after_fork)


# --------------------------------------------------------------------------- reads


def get_value(key: str) -> Any:
    """The typed value of ``key`` (its schema default when no row exists)."""
    get_definition(key)
    value = _read(key)
    if isinstance(value, _InvalidStoredValue):
        raise ValidationError(value.message, code="invalid_stored_value")
    return value


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    """Typed values of several keys (one cache pass; at most one query on a cold epoch)."""
    return {key: get_value(key) for key in keys}


def get_or_set(key: str, factory: Callable[[], Any], timeout: float | None = None) -> Any:
    """The seeds' ``TTLCache.get_or_set``: cached value of ``key`` or ``factory()`` computed once.

    Concurrent callers of a missing key wait on a per-key lock and double-check,
    so ``factory`` runs once. Values live in the current epoch and so are dropped
    by any config change, like config values themselves.
    """

    def compute(epoch: int, local_key: str) -> Any:
        value = factory()
        _local_cache().set(local_key, value, _timeout(timeout))
        return value

    return _cached(key, key, compute)


def warm_up() -> int:
    """Make sure every config row is in this process's cache; returns rows loaded (0 when already warm).

    Cheap when warm (a locmem lookup and the usual rate-limited stamp check), so
    it can run at the start of every job (``trading/services/job_runner.py``) and
    after the WSGI application is created (``config/wsgi.py``). Cold, it loads
    every row in one query - the same thing the first miss of a process does.
    """
    epoch = _synced_epoch()
    if _local_cache().get(_local_key(epoch, _LOADED_MARKER)) is not None:
        return 0
    with _lock_for(_ROWS_LOCK_NAME):
        if _local_cache().get(_local_key(epoch, _LOADED_MARKER)) is not None:
            return 0
        loaded = _load_all_rows(epoch)
    cache_stats.record(NAMESPACE, False)  # a trip to the database, like the miss it replaces
    return loaded


def invalidate(key: str | None = None) -> None:
    """Drop ``key`` (or everything) from this process's cache; other processes use the stamp."""
    if key is None:
        _new_epoch()
        return
    _local_cache().delete(_local_key(_state.epoch, key))


def stats() -> dict[str, Any]:
    """The seeds' ``TTLCache.stats()`` for this process: hits, misses, hit_rate (%), plus sync state."""
    counts = cache_stats.process_counts(NAMESPACE)
    return {
        **counts,
        "generation": None if _state.seen_generation is _MISSING else _state.seen_generation,
        "epoch": _state.epoch,
        "stamp_checks": _state.stamp_checks,
    }


def _read(key: str) -> Any:
    if _pending_publishes[0] and _uncommitted_write_pending():
        # This thread's transaction changed config and has not committed: read the
        # database (read-your-writes) and cache nothing uncommitted.
        cache_stats.record(NAMESPACE, False)
        return _rows_from_database().get(key, _default(key))
    # A miss loads every row (one query); another thread may have done so while we waited.
    return _cached(key, _ROWS_LOCK_NAME, lambda epoch, local_key: _load_all_rows(epoch, return_values=True)[key])


def _cached(key: str, lock_name: str, load: Callable[[int, str], Any]) -> Any:
    """``key``'s value in the current epoch, else ``load(epoch, local_key)`` under ``lock_name``, double-checked.

    Records one hit or miss in the cache statistics; ``load`` runs once for concurrent misses.
    """
    cache = _local_cache()
    epoch = _synced_epoch()
    local_key = _local_key(epoch, key)
    value = cache.get(local_key, _MISSING)
    if value is not _MISSING:
        cache_stats.record(NAMESPACE, True)
        return value
    with _lock_for(lock_name):
        value = cache.get(local_key, _MISSING)
        if value is not _MISSING:
            cache_stats.record(NAMESPACE, True)
            return value
        value = load(epoch, local_key)
    cache_stats.record(NAMESPACE, False)
    return value


def _load_all_rows(epoch: int, *, return_values: bool = False) -> Any:
    """One query for every row; every known key is cached (defaults for missing rows)."""
    rows = _rows_from_database()
    values = {key: rows.get(key, _default(key)) for key in DEFINITIONS}
    entries = {_local_key(epoch, key): value for key, value in values.items()}
    entries[_local_key(epoch, _LOADED_MARKER)] = True
    _local_cache().set_many(entries, _timeout(None))
    return values if return_values else len(rows)


def _rows_from_database() -> dict[str, Any]:
    from trading.models import SystemConfig

    parsed: dict[str, Any] = {}
    for key, raw in SystemConfig.objects.values_list("key", "value"):
        definition = DEFINITIONS.get(key)
        if definition is None:
            continue  # a row for a key the schema no longer has: nobody reads it
        try:
            parsed[key] = definition.parse(raw)
        except ValidationError as error:
            logger.error("config_stored_value_invalid", key=key, error="; ".join(error.messages))
            parsed[key] = _InvalidStoredValue(f"Stored value of {key} is invalid: {'; '.join(error.messages)}")
    return parsed


def _default(key: str) -> Any:
    return DEFINITIONS[key].default


def _local_key(epoch: int, key: str) -> str:
    return f"{epoch}:{key}"


def _timeout(timeout: float | None) -> float:
    return _setting("CONFIG_CACHE_TTL") if timeout is None else timeout


def _lock_for(name: str) -> threading.Lock:
    lock = _state.key_locks.get(name)
    if lock is None:
        with _state.key_locks_guard:
            lock = _state.key_locks.setdefault(name, threading.Lock())
    return lock


# ------------------------------------------------------------------ generation stamp


def _synced_epoch() -> int:
    """The local epoch, after a stamp check if the sync interval has passed (monotonic clock)."""
    if clock() - _state.last_check_at >= _setting("CONFIG_CACHE_SYNC_INTERVAL"):
        _check_stamp()
    return _state.epoch


def _check_stamp() -> None:
    # One thread checks; the others keep serving the current epoch instead of queueing.
    if not _state.check_lock.acquire(blocking=False):
        return
    try:
        now = clock()
        if now - _state.last_check_at < _setting("CONFIG_CACHE_SYNC_INTERVAL"):
            return
        _state.last_check_at = now
        _state.stamp_checks += 1
        try:
            generation = shared_store.call(lambda cache: cache.get(GENERATION_KEY))
        except Exception as error:
            # The shared store is down: keep serving (the TTL bounds staleness) and say so.
            logger.warning("config_generation_check_failed", error=type(error).__name__)
            return
        if generation != _state.seen_generation:
            if _state.seen_generation is not _MISSING:
                logger.info("config_generation_changed", generation=generation, previous=_state.seen_generation)
            _state.seen_generation = generation
            _new_epoch()
    finally:
        _state.check_lock.release()


def _new_epoch() -> None:
    # Old-epoch entries are unreachable; clearing frees them (the alias is config-only).
    with _state.epoch_lock:
        _state.epoch += 1
        _local_cache().clear()


def bump_generation() -> Any:
    """Publish a change to every process: increment the shared stamp; returns the new value."""
    return shared_store.call(lambda cache: shared_store.increment(cache, GENERATION_KEY))


def publish_change(reason: str) -> None:
    """After a committed change: bump the shared stamp and start a new local epoch.

    Never raises: a failure is logged (other processes then pick the change up at
    TTL expiry at the latest) and must not fail the operator's save.
    """
    try:
        generation = bump_generation()
    except Exception as error:
        logger.error("config_generation_bump_failed", reason=reason, error=type(error).__name__)
        _new_epoch()
        return
    with _state.check_lock:
        _state.seen_generation = generation
        _new_epoch()
    logger.info("config_change_published", reason=reason, generation=generation)


def publish_after_migrate() -> None:
    """``post_migrate``: data migrations write through historical models, so no post_save fired.

    On a fresh database the shared cache table does not exist yet (``createcachetable``
    runs after ``migrate``); there is nothing to invalidate elsewhere then.
    """
    if shared_store.table_missing():
        _new_epoch()
        return
    publish_change("migrate")


# ------------------------------------------------------------- writes and signals


class _PendingPublish:
    """An ``on_commit`` callback; its presence in the connection's queue means "uncommitted write"."""

    __slots__ = ("counted", "done", "reason")

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.done = False
        self.counted = False

    def __call__(self) -> None:
        self.done = True
        if self.counted:
            _count_pending(-1)
        publish_change(self.reason)


_pending_lock = threading.Lock()


def _count_pending(delta: int) -> None:
    with _pending_lock:
        _pending_publishes[0] += delta


def on_config_row_changed(reason: str) -> None:
    """Called by the ``post_save``/``post_delete`` receivers (admin edits, service writes, shell)."""
    from trading.models import SystemConfig

    _new_epoch()  # read-your-writes in this process, right away
    if getattr(_state.batch, "active", False):
        return  # set_many publishes once for the whole batch
    _schedule_publish(router.db_for_write(SystemConfig), reason)


def _schedule_publish(alias: str, reason: str) -> None:
    connection = connections[alias]
    pending = _PendingPublish(reason)
    if connection.in_atomic_block:
        connection.__dict__.setdefault(_PENDING_ATTRIBUTE, []).append(pending)
        pending.counted = True
        _count_pending(1)
    transaction.on_commit(pending, using=alias)  # runs now in autocommit mode


def _uncommitted_write_pending() -> bool:
    """True while this thread's open transaction holds a config write not yet committed."""
    from trading.models import SystemConfig

    connection = connections[router.db_for_read(SystemConfig)]
    pendings = connection.__dict__.get(_PENDING_ATTRIBUTE)
    if not pendings:
        return False
    queued = {id(entry[1]) for entry in connection.run_on_commit}
    still_pending = [pending for pending in pendings if not pending.done and id(pending) in queued]
    rolled_back = [pending for pending in pendings if not pending.done and id(pending) not in queued]
    connection.__dict__[_PENDING_ATTRIBUTE] = still_pending
    if rolled_back:
        _count_pending(-len(rolled_back))
        _new_epoch()  # the write never happened: forget anything cached since
    return bool(still_pending)


def set_value(key: str, value: Any, *, description: str | None = None) -> Any:
    """Validate and store ``value``; raises ``django.core.exceptions.ValidationError``.

    Every process sees the new value within one sync interval after commit.
    """
    from trading.models import SystemConfig

    definition = get_definition(key)
    text = definition.serialize(value)
    row = SystemConfig.objects.filter(key=key).first() or SystemConfig(key=key)
    row.value = text
    if description is not None:
        row.description = description
    row.save()
    return definition.parse(text)


def set_many(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every value first (all or nothing), store them in one transaction, publish once.

    Raises ``ValidationError`` with a message per bad key; nothing is written then.
    """
    from trading.models import SystemConfig

    errors: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for key, value in values.items():
        try:
            texts[key] = get_definition(key).serialize(value)
        except ValidationError as error:
            errors[key] = error.messages
    if errors:
        raise ValidationError(errors)
    alias = router.db_for_write(SystemConfig)
    with transaction.atomic(using=alias):
        _state.batch.active = True
        try:
            existing = {row.key: row for row in SystemConfig.objects.select_for_update().filter(key__in=texts)}
            for key, text in texts.items():
                row = existing.get(key) or SystemConfig(key=key)
                row.value = text
                row.save()
        finally:
            _state.batch.active = False
        _schedule_publish(alias, "set_many")
    return {key: DEFINITIONS[key].parse(text) for key, text in texts.items()}
