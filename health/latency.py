"""Latency percentiles from JSON-lines logs (seed SC-006): per endpoint and per job."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LatencySummary:
    kind: str  # "endpoint" | "job"
    name: str  # "GET /api/orders/" or a job name
    count: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * weight


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def summarize(lines: Iterable[str]) -> tuple[list[LatencySummary], int]:
    """Summaries sorted by kind and name, and the number of lines skipped (not JSON / not an event)."""
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    failures: dict[tuple[str, str], int] = defaultdict(int)
    skipped = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(event, dict):
            skipped += 1
            continue
        duration = _number(event.get("duration_ms"))
        if duration is None:
            continue
        if event.get("metric_type") == "job" and event.get("job_name"):
            key = ("job", str(event["job_name"]))
            if event.get("success") is False:
                failures[key] += 1
        elif event.get("event") == "api_request" and event.get("route") and event.get("method"):
            key = ("endpoint", f"{event['method']} {event['route']}")
            status = _number(event.get("status"))
            if status is not None and status >= 500:
                failures[key] += 1
        else:
            continue
        durations[key].append(duration)
    summaries = []
    for (kind, name), values in sorted(durations.items()):
        values.sort()
        summaries.append(
            LatencySummary(
                kind=kind,
                name=name,
                count=len(values),
                failures=failures[(kind, name)],
                p50_ms=round(percentile(values, 0.50), 3),
                p95_ms=round(percentile(values, 0.95), 3),
                p99_ms=round(percentile(values, 0.99), 3),
                max_ms=round(values[-1], 3),
            )
        )
    return summaries, skipped
