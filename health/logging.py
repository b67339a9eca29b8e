"""Log context helpers: job runs bind ``job_name`` + ``run_id``, order flows bind ``identifier``.

Job metric events follow seed 004 ``JobMetric``::

    {"event": "job_metric", "metric_type": "job", "job_name": ..., "duration_ms": ...,
     "success": true, "error": null, "timestamp": "..."}

(``timestamp`` comes from the TimeStamper processor, ISO UTC.)

``manage.py latency_report`` reads them back from the JSON logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from health.masking import mask_text

logger = structlog.get_logger("health.jobs")


@contextmanager
def bind_job(job_name: str, run_id: str | None = None) -> Iterator[str]:
    """Bind ``job_name`` and a fresh ``run_id`` to every log line inside the block; yields the run id."""
    run_id = run_id or uuid.uuid4().hex
    with structlog.contextvars.bound_contextvars(job_name=job_name, run_id=run_id):
        yield run_id


@contextmanager
def bind_order(identifier: str) -> Iterator[None]:
    """Bind the order ``identifier`` to every log line of an order flow."""
    with structlog.contextvars.bound_contextvars(identifier=identifier):
        yield


def log_job_metric(job_name: str, *, duration_ms: float, success: bool, error: str | None = None) -> None:
    """Emit one seed-004 ``JobMetric`` event (``error`` is masked)."""
    logger.info(
        "job_metric",
        metric_type="job",
        job_name=job_name,
        duration_ms=round(duration_ms, 3),
        success=success,
        error=mask_text(error) if error else None,
    )
