"""Hit/miss counters per cache namespace (config, ticker, balance), per process and cluster-wide.

``record`` is on the hot path: it updates in-process counters and the
Prometheus counter ``cache_requests_total``. Counters are per process, so every
``settings.CACHE_STATS_FLUSH_INTERVAL`` seconds at most (piggybacked on
``record``, never from inside a caller's database transaction) this process
adds its deltas to counters in the ``shared`` cache; ``snapshot()`` returns the
cluster-wide totals (shared + this process's unflushed deltas) and this
process's own numbers.

A hit-rate alert (config key ``cache_hit_rate_alert_pct``, seed 003: 80 %) is
logged as a structlog warning when a namespace's hit rate in this process
crosses below the threshold (after ``MIN_REQUESTS_FOR_ALERT`` lookups), once per
crossing, and an info line when it recovers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings

from health.metrics import CACHE_REQUESTS
from trading.services import shared_store

logger = structlog.get_logger(__name__)

KNOWN_NAMESPACES = ("config", "ticker", "balance")
MIN_REQUESTS_FOR_ALERT = 100
DEFAULT_ALERT_THRESHOLD_PCT = 80.0
DEFAULT_FLUSH_INTERVAL_S = 5.0
SHARED_KEY_PREFIX = "cache_stats"

clock: Callable[[], float] = time.monotonic  # injectable for tests

_lock = threading.Lock()
_flush_lock = threading.Lock()
_process_counts: dict[str, list[int]] = {}  # namespace -> [hits, misses] since process start
_unflushed: dict[str, list[int]] = {}  # namespace -> [hits, misses] not yet in the shared store
_below_threshold: dict[str, bool] = {}
_metric_children: dict[tuple[str, bool], Any] = {}
_state: dict[str, float] = {"last_flush_at": clock(), "threshold_pct": DEFAULT_ALERT_THRESHOLD_PCT}


def _reinitialise_after_fork() -> None:
    # A forked worker starts its own counts: the parent's unflushed deltas are the parent's to flush.
    global _lock, _flush_lock
    _lock = threading.Lock()
    _flush_lock = threading.Lock()
    _process_counts.clear()
    _unflushed.clear()
    _below_threshold.clear()


os.register_at_fork(after_in_child=_reinitialise_after_fork)


def record(namespace: str, hit: bool) -> None:
    """Count one lookup of ``namespace``; ``hit`` means it was served without the backing store."""
    index = 0 if hit else 1
    with _lock:
        counts = _process_counts.setdefault(namespace, [0, 0])
        counts[index] += 1
        _unflushed.setdefault(namespace, [0, 0])[index] += 1
        hits, misses = counts
    metric = _metric_children.get((namespace, hit))
    if metric is None:
        metric = _metric_children[(namespace, hit)] = CACHE_REQUESTS.labels(namespace, "hit" if hit else "miss")
    metric.inc()
    _check_alert(namespace, hits, misses)
    if clock() - _state["last_flush_at"] >= _flush_interval():
        flush()


def _flush_interval() -> float:
    return getattr(settings, "CACHE_STATS_FLUSH_INTERVAL", DEFAULT_FLUSH_INTERVAL_S)


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
    """Add this process's unflushed deltas to the shared counters; True when something was written.

    Writing is skipped (the deltas wait for the next interval) inside a caller's
    transaction with the database backend, so stats never hold row locks in, or
    roll back with, business transactions. On failure the deltas are kept for the
    next attempt. The alert threshold is re-read from config on every attempt.
    """
    if not _flush_lock.acquire(blocking=False):
        return False  # another thread is flushing (or we are re-entering through the config read below)
    try:
        _state["last_flush_at"] = clock()
        _refresh_threshold()
        if shared_store.in_caller_transaction():
            return False
        with _lock:
            deltas = {namespace: counts[:] for namespace, counts in _unflushed.items() if any(counts)}
            _unflushed.clear()
        written = False
        if deltas:
            try:
                shared_store.call(lambda cache: _add_to_shared(cache, deltas))
                written = True
            except Exception as error:
                logger.warning("cache_stats_flush_failed", error=type(error).__name__)
                with _lock:
                    for namespace, (hits, misses) in deltas.items():
                        counts = _unflushed.setdefault(namespace, [0, 0])
                        counts[0] += hits
                        counts[1] += misses
        return written
    finally:
        _flush_lock.release()


def _add_to_shared(cache: Any, deltas: dict[str, list[int]]) -> None:
    for namespace, (hits, misses) in deltas.items():
        if hits:
            shared_store.increment(cache, _shared_key(namespace, "hits"), hits)
        if misses:
            shared_store.increment(cache, _shared_key(namespace, "misses"), misses)


def _refresh_threshold() -> None:
    try:
        from trading.services import config

        _state["threshold_pct"] = float(config.get_value("cache_hit_rate_alert_pct"))
    except Exception as error:  # the alert must never break a cache read
        logger.warning("cache_hit_rate_threshold_unavailable", error=type(error).__name__)


def _shared_key(namespace: str, field: str) -> str:
    return f"{SHARED_KEY_PREFIX}:{namespace}:{field}"


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
          "namespaces": {                # cluster-wide: shared counters + this process's unflushed deltas
            "config":  {"hits": 120034, "misses": 12, "hit_rate": 99.99},
            "ticker":  {"hits": 5, "misses": 8640, "hit_rate": 0.06},
            "balance": {"hits": 0, "misses": 0, "hit_rate": 0.0}
          },
          "process": {                   # this process only, since it started
            "pid": 4242,
            "namespaces": {"config": {"hits": 900, "misses": 1, "hit_rate": 99.89}, ...}
          },
          "alert_threshold_pct": 80.0,
          "flush_interval_s": 5.0
        }

    ``hit_rate`` is a percentage rounded to 2 places (0.0 when there were no
    lookups). Other processes' counts lag by up to ``flush_interval_s``.
    """
    with _lock:
        process = {namespace: counts[:] for namespace, counts in _process_counts.items()}
        unflushed = {namespace: counts[:] for namespace, counts in _unflushed.items()}
    namespaces = sorted(set(KNOWN_NAMESPACES) | set(process))
    keys = [_shared_key(namespace, field) for namespace in namespaces for field in ("hits", "misses")]
    scope = "cluster"
    try:
        shared = shared_store.call(lambda cache: cache.get_many(keys))
    except Exception as error:
        logger.warning("cache_stats_shared_read_failed", error=type(error).__name__)
        shared, scope = {}, "process"
    cluster = {}
    for namespace in namespaces:
        if scope == "cluster":
            local_hits, local_misses = unflushed.get(namespace, (0, 0))
        else:
            local_hits, local_misses = process.get(namespace, (0, 0))
        hits = int(shared.get(_shared_key(namespace, "hits"), 0)) + local_hits
        misses = int(shared.get(_shared_key(namespace, "misses"), 0)) + local_misses
        cluster[namespace] = _entry(hits, misses)
    return {
        "scope": scope,
        "namespaces": cluster,
        "process": {
            "pid": os.getpid(),
            "namespaces": {namespace: _entry(*process.get(namespace, (0, 0))) for namespace in namespaces},
        },
        "alert_threshold_pct": _state["threshold_pct"],
        "flush_interval_s": _flush_interval(),
    }


def reset() -> None:
    """Forget this process's counters and alert state (tests; the shared counters stay)."""
    with _lock:
        _process_counts.clear()
        _unflushed.clear()
        _below_threshold.clear()
    _state["last_flush_at"] = clock()
    _state["threshold_pct"] = DEFAULT_ALERT_THRESHOLD_PCT
