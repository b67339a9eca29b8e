"""Hit/miss counters per cache namespace (config, ticker, balance), per process and cluster-wide.

``record`` is on the hot path: it updates in-process counters and the
Prometheus counter ``cache_requests_total``. Counters are per process, so every
``settings.CACHE_STATS_FLUSH_INTERVAL`` seconds at most (default 30 s;
piggybacked on ``record``, never from inside a caller's database transaction)
this process publishes its counts to the ``shared`` cache; ``snapshot()``
returns cluster-wide totals (every process's last published counts, this
process's live ones) and this process's own numbers.

A hit-rate alert (config key ``cache_hit_rate_alert_pct``, seed 003: 80 %) is
logged as a structlog warning when a namespace's hit rate in this process
crosses below the threshold (after ``MIN_REQUESTS_FOR_ALERT`` lookups), once per
crossing, and an info line when it recovers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.test.signals import setting_changed

from health.metrics import CACHE_REQUESTS
from trading.services import shared_store

logger = structlog.get_logger(__name__)

KNOWN_NAMESPACES = ("config", "ticker", "balance")
MIN_REQUESTS_FOR_ALERT = 100
DEFAULT_ALERT_THRESHOLD_PCT = 80.0
DEFAULT_FLUSH_INTERVAL_S = 30.0
REGISTRY_CHECK_EVERY = 12  # flushes between checks that this process is still registered
SHARED_KEY_PREFIX = "cache_stats"
REGISTRY_KEY = f"{SHARED_KEY_PREFIX}:processes"
PROCESS_RECORD_TTL_S = 7 * 24 * 3600

clock: Callable[[], float] = time.monotonic  # injectable for tests

_lock = threading.Lock()
_flush_lock = threading.Lock()
_process_counts: dict[str, list[int]] = {}  # namespace -> [hits, misses] since process start
_dirty: set[str] = set()  # namespaces counted since the last published record
_below_threshold: dict[str, bool] = {}
_metric_children: dict[tuple[str, bool], Any] = {}
_state: dict[str, float] = {"last_flush_at": clock(), "threshold_pct": DEFAULT_ALERT_THRESHOLD_PCT}
_identity: dict[str, Any] = {}
_suppressed = threading.local()
_resolved: dict[str, float] = {}


def _forget_resolved(**kwargs: Any) -> None:
    _resolved.clear()


setting_changed.connect(_forget_resolved, dispatch_uid="trading.cache_stats.settings_changed")


def _reinitialise_after_fork() -> None:
    # A forked worker counts its own lookups under its own record (new pid, new key).
    global _lock, _flush_lock
    _lock = threading.Lock()
    _flush_lock = threading.Lock()
    _process_counts.clear()
    _dirty.clear()
    _below_threshold.clear()


os.register_at_fork(after_in_child=_reinitialise_after_fork)


def record(namespace: str, hit: bool) -> None:
    """Count one lookup of ``namespace``; ``hit`` means it was served without the backing store."""
    if getattr(_suppressed, "active", False):
        return
    index = 0 if hit else 1
    with _lock:
        counts = _process_counts.setdefault(namespace, [0, 0])
        counts[index] += 1
        _dirty.add(namespace)
        hits, misses = counts
    metric = _metric_children.get((namespace, hit))
    if metric is None:
        metric = _metric_children[(namespace, hit)] = CACHE_REQUESTS.labels(namespace, "hit" if hit else "miss")
    metric.inc()
    _check_alert(namespace, hits, misses)
    if clock() - _state["last_flush_at"] >= _flush_interval():
        flush()


def _flush_interval() -> float:
    try:
        return _resolved["flush_interval"]
    except KeyError:
        value = float(getattr(settings, "CACHE_STATS_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL_S))
        _resolved["flush_interval"] = value
        return value


def _rate(hits: int, misses: int) -> float:
    total = hits + misses
    return round(hits / total * 100, 2) if total else 0.0


def _check_alert(namespace: str, hits: int, misses: int) -> None:
    if hits + misses < MIN_REQUESTS_FOR_ALERT:
        return
    threshold = _state["threshold_pct"]
    rate = hits / (hits + misses) * 100
    below = rate < threshold
    if below == _below_threshold.get(namespace, False):
        return
    with _lock:
        if below == _below_threshold.get(namespace, False):
            return  # another thread logged this crossing
        _below_threshold[namespace] = below
    if below:
        logger.warning(
            "cache_hit_rate_below_threshold",
            namespace=namespace,
            hit_rate=round(rate, 2),
            threshold_pct=threshold,
            hits=hits,
            misses=misses,
        )
    else:
        logger.info("cache_hit_rate_recovered", namespace=namespace, hit_rate=round(rate, 2), threshold_pct=threshold)


def flush() -> bool:
    """Publish this process's cumulative counts to the shared store; True when something was written.

    One record per process (``cache_stats:process:<host>:<pid>:<start>``, kept
    ``PROCESS_RECORD_TTL_S`` after its last flush) plus a registry of those keys.
    Per-process records instead of shared ``incr`` counters because the database
    backend's ``incr`` is a read-then-write (not atomic: concurrent processes lose
    deltas) costing about five queries per counter; one ``set`` per flush is
    exact and cheaper. Writing is skipped (retried at the next interval) inside a
    caller's transaction with the database backend, so stats never hold row locks
    in, or roll back with, business transactions. The alert threshold is re-read
    from config on every attempt.
    """
    if not _flush_lock.acquire(blocking=False):
        return False  # another thread is flushing
    try:
        _state["last_flush_at"] = clock()
        _refresh_threshold()
        if shared_store.in_caller_transaction():
            return False
        with _lock:
            if not _dirty:
                return False
            counts = {namespace: pair[:] for namespace, pair in _process_counts.items()}
            flushed = set(_dirty)
            _dirty.clear()
        try:
            shared_store.call(lambda cache: _write_process_record(cache, counts))
        except Exception as error:
            logger.warning("cache_stats_flush_failed", error=type(error).__name__)
            with _lock:
                _dirty.update(flushed)
            return False
        return True
    finally:
        _flush_lock.release()


def _process_key() -> str:
    pid = os.getpid()
    if _identity.get("pid") != pid:  # first use, or a forked child
        _identity.clear()
        _identity.update(pid=pid, key=f"{SHARED_KEY_PREFIX}:process:{socket.gethostname()}:{pid}:{time.time_ns()}")
    return _identity["key"]


def _write_process_record(cache: Any, counts: dict[str, list[int]]) -> None:
    key = _process_key()
    cache.set(key, {"namespaces": counts}, PROCESS_RECORD_TTL_S)
    flushes = _identity["flushes"] = _identity.get("flushes", 0) + 1
    if flushes % REGISTRY_CHECK_EVERY != 1:
        return
    # Registered on the first flush and re-checked now and then: the registry is a plain
    # get-then-set, so a concurrent registration can be lost; it heals at the next check.
    registry = cache.get(REGISTRY_KEY) or []
    if key not in registry:
        cache.set(REGISTRY_KEY, [*registry, key], None)


def _refresh_threshold() -> None:
    _suppressed.active = True  # this config read is bookkeeping, not a cache lookup to count
    try:
        from trading.services import config

        _state["threshold_pct"] = float(config.get_value("cache_hit_rate_alert_pct"))
    except Exception as error:  # the alert must never break a cache read
        logger.warning("cache_hit_rate_threshold_unavailable", error=type(error).__name__)
    finally:
        _suppressed.active = False


def _entry(hits: int, misses: int) -> dict[str, Any]:
    return {"hits": hits, "misses": misses, "hit_rate": _rate(hits, misses)}


def process_counts(namespace: str) -> dict[str, Any]:
    """This process's ``{"hits", "misses", "hit_rate"}`` for one namespace (hit_rate in %)."""
    with _lock:
        hits, misses = _process_counts.get(namespace, (0, 0))
    return _entry(hits, misses)


def snapshot() -> dict[str, Any]:
    """Hit/miss statistics for ``GET /api/v1/system/cache-stats``. JSON shape::

        {
          "scope": "cluster",            # "process" when the shared store could not be read
          "namespaces": {                # cluster-wide: every live process's last flush, this one live
            "config":  {"hits": 120034, "misses": 12, "hit_rate": 99.99},
            "ticker":  {"hits": 5, "misses": 8640, "hit_rate": 0.06},
            "balance": {"hits": 0, "misses": 0, "hit_rate": 0.0}
          },
          "processes": 5,                # processes whose counts are included
          "process": {                   # this process only, since it started
            "pid": 4242,
            "namespaces": {"config": {"hits": 900, "misses": 1, "hit_rate": 99.89}, ...}
          },
          "alert_threshold_pct": 80.0,
          "flush_interval_s": 30.0
        }

    ``hit_rate`` is a percentage rounded to 2 places (0.0 when there were no
    lookups). Other processes' counts lag by up to ``flush_interval_s``.
    """
    with _lock:
        process = {namespace: pair[:] for namespace, pair in _process_counts.items()}
    own_key = _process_key()
    scope = "cluster"
    try:
        records = shared_store.call(_read_process_records)
    except Exception as error:
        logger.warning("cache_stats_shared_read_failed", error=type(error).__name__)
        records, scope = {}, "process"
    records[own_key] = {"namespaces": process}  # this process: live numbers, not its last flush
    totals: dict[str, list[int]] = {namespace: [0, 0] for namespace in KNOWN_NAMESPACES}
    for record_value in records.values():
        for namespace, (hits, misses) in record_value.get("namespaces", {}).items():
            pair = totals.setdefault(namespace, [0, 0])
            pair[0] += hits
            pair[1] += misses
    namespaces = sorted(totals)
    return {
        "scope": scope,
        "namespaces": {namespace: _entry(*totals[namespace]) for namespace in namespaces},
        "processes": len(records),
        "process": {
            "pid": os.getpid(),
            "namespaces": {namespace: _entry(*process.get(namespace, (0, 0))) for namespace in namespaces},
        },
        "alert_threshold_pct": _state["threshold_pct"],
        "flush_interval_s": _flush_interval(),
    }


def _read_process_records(cache: Any) -> dict[str, Any]:
    registry = cache.get(REGISTRY_KEY) or []
    records = cache.get_many(registry) if registry else {}
    live = [key for key in registry if key in records]
    if len(live) != len(registry):  # records of processes gone for PROCESS_RECORD_TTL_S
        cache.set(REGISTRY_KEY, live, None)
    return records


def reset() -> None:
    """Start over as if this were a new process (tests); records already published stay."""
    _identity.clear()
    with _lock:
        _process_counts.clear()
        _dirty.clear()
        _below_threshold.clear()
    _state["last_flush_at"] = clock()
    _state["threshold_pct"] = DEFAULT_ALERT_THRESHOLD_PCT
