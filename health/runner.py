"""Run the health checks concurrently under one deadline (seed 004 ``DetailedHealthResponse``).

Every check starts at once in its own thread; whatever has not answered when
``timeout`` runs out is reported ``unhealthy`` / "timed out" with
``latency_ms = None``. The executor is shut down without waiting, so a hung
dependency never holds the response; the hung thread releases its database
connection itself when it finally returns (``ComponentCheck.run``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceWarning

from health.checks import describe_error, release_thread_connections
from health.masking import mask_text

HEALTHY = "healthy"
WARNING = "warning"
UNHEALTHY = "unhealthy"
DEGRADED = "degraded"


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    status: str  # healthy | warning | unhealthy
    latency_ms: float | None
    message: str


@dataclass(frozen=True)
class DetailedHealth:
    status: str  # healthy | degraded | unhealthy
    timestamp: str
    version: str
    components: list[ComponentHealth]

    def as_dict(self) -> dict:
        return asdict(self)


def component_name(check: HealthCheck) -> str:
    return getattr(check, "component", None) or type(check).__name__


def evaluate(check: HealthCheck) -> ComponentHealth:
    """Run one check synchronously and classify its outcome."""
    started = time.perf_counter()
    try:
        check.run()
    except ServiceWarning as error:
        status, message = WARNING, mask_text(str(error.message))
    except HealthCheckException as error:
        status, message = UNHEALTHY, mask_text(str(error.message))
    except Exception as error:  # a check that crashes is a broken component
        status, message = UNHEALTHY, describe_error(error)
    else:
        status, message = HEALTHY, mask_text(getattr(check, "message", "") or "ok")
    finally:
        release_thread_connections()
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ComponentHealth(component_name(check), status, latency_ms, message)


def aggregate(statuses: Iterable[str]) -> str:
    """All healthy → healthy; any unhealthy → unhealthy; otherwise degraded."""
    statuses = list(statuses)
    if UNHEALTHY in statuses:
        return UNHEALTHY
    if WARNING in statuses:
        return DEGRADED
    return HEALTHY


def run_checks(checks: list[HealthCheck], *, timeout: float, version: str) -> DetailedHealth:
    """Run ``checks`` concurrently; each gets at most ``timeout`` seconds of the same window."""
    executor = ThreadPoolExecutor(max_workers=max(len(checks), 1), thread_name_prefix="health-check")
    try:
        futures: list[Future[ComponentHealth]] = [executor.submit(evaluate, check) for check in checks]
        wait(futures, timeout=timeout)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    components = []
    for check, future in zip(checks, futures, strict=True):
        if future.done() and not future.cancelled():
            components.append(future.result())
        else:
            components.append(ComponentHealth(component_name(check), UNHEALTHY, None, f"timed out after {timeout:g} s"))
    return DetailedHealth(
        status=aggregate(component.status for component in components),
        timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        version=version,
        components=components,
    )
