"""The wrapper every job run goes through: run lock, timing, one metric event, never a crash.

Retries are not here: the clients already retry with the shared policy
(``trading/clients/retry.py``); after their last failure the run fails, is
logged, and the job waits for its next cycle.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from health.metrics import JOB_DURATION, JOB_FAILURES
from trading.services import job_locks

logger = structlog.get_logger("trading.jobs")

#: Run-lock lease per job, seconds. Long enough to cover a slow run (the shared retry
#: policy spends at most ~7 s; the cluster kills a task after 180 s); short enough that a
#: run killed with SIGKILL blocks its job only briefly. A run that ends normally always
#: releases its lock at once.
RUN_LOCK_TTL_S: dict[str, float] = {
    "collect_market_data": 60,
    "check_volatility": 90,
    "generate_trading_signal": 200,
    "sync_pending_orders": 200,
    "cleanup_old_data": 200,
}
DEFAULT_RUN_LOCK_TTL_S = 200


@dataclass(frozen=True)
class JobResult:
    """The outcome of one run (or of a skipped one: the job was already running)."""

    job_name: str
    run_id: str
    success: bool
    skipped: bool = False
    error: str | None = None
    duration_ms: float = 0.0
    value: Any = None


def run_lock_name(job_name: str) -> str:
    return f"job:{job_name}"


def _warm_up_config() -> None:
    from trading.services import config

    warm_up = getattr(config, "warm_up", None)
    if callable(warm_up):
        warm_up()


def run_job(name: str, function: Callable[[], Any], *, lock_ttl_s: float | None = None) -> JobResult:
    """Run ``function`` once as job ``name``; never raises.

    Binds ``job_name``/``run_id`` to every log line of the run, takes the run lock
    ``job:<name>`` (a run that finds it held is skipped and logged, not queued),
    and emits exactly one metric event per run that actually ran.
    """
    run_id = uuid.uuid4().hex
    ttl = lock_ttl_s or RUN_LOCK_TTL_S.get(name, DEFAULT_RUN_LOCK_TTL_S)
    with structlog.contextvars.bound_contextvars(job_name=name, run_id=run_id):
        started = time.perf_counter()
        token: str | None = None
        value: Any = None
        error: str | None = None
        try:
            token = job_locks.acquire(run_lock_name(name), ttl)
            if token is None:
                logger.info("job.skipped", reason="previous run still going")
                return JobResult(job_name=name, run_id=run_id, success=False, skipped=True)
            _warm_up_config()
            value = function()
        except Exception as exception:
            error = f"{type(exception).__name__}: {exception}"
            logger.exception("job.failed", error=error)
        finally:
            if token is not None:
                try:
                    job_locks.release(run_lock_name(name), token)
                except Exception:
                    # The lease expires on its own; the next run only waits for that.
                    logger.exception("job.lock_release_failed")
        duration_s = time.perf_counter() - started
        success = error is None
        _emit_metric(name, duration_s, success, error)
        return JobResult(
            job_name=name,
            run_id=run_id,
            success=success,
            error=error,
            duration_ms=round(duration_s * 1000, 2),
            value=value,
        )


def _emit_metric(name: str, duration_s: float, success: bool, error: str | None) -> None:
    """Seed 004 JobMetric: one JSON event per run, and the Prometheus series."""
    JOB_DURATION.labels(job=name).observe(duration_s)
    if not success:
        JOB_FAILURES.labels(job=name).inc()
    logger.info(
        "job.metric",
        metric_type="job",
        job_name=name,
        duration_ms=round(duration_s * 1000, 2),
        success=success,
        error=error,
        timestamp=datetime.now(UTC).isoformat(),
    )
