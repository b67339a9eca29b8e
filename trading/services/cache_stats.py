"""Hit/miss counters per cache namespace (config, ticker, balance).

INTERIM VERSION (foundation): per-process counters. The config-cache issue
owns this module; ``record`` and ``snapshot`` are the contract.
"""

from __future__ import annotations

import threading
from collections import defaultdict

_lock = threading.Lock()
_counts: dict[str, dict[str, int]] = defaultdict(lambda: {"hits": 0, "misses": 0})


def record(namespace: str, hit: bool) -> None:
    with _lock:
        _counts[namespace]["hits" if hit else "misses"] += 1


def snapshot() -> dict[str, dict[str, float]]:
    with _lock:
        result = {}
        for namespace, counts in _counts.items():
            total = counts["hits"] + counts["misses"]
            rate = round(counts["hits"] / total * 100, 2) if total else 0.0
            result[namespace] = {**counts, "hit_rate": rate}
        return result


def reset() -> None:
    with _lock:
        _counts.clear()
