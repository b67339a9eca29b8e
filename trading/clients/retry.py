"""The one retry policy for network calls (seed 000 §3: exponential backoff, 3 retries).

Up to 3 retries after the first attempt, waiting about 1 -> 2 -> 4 s with a
little jitter, only for errors whose ``retryable`` attribute is true (timeouts,
connection errors, 5xx, 429, per-minute AI quota). The added wait is capped at
``MAX_TOTAL_WAIT`` seconds so a 10 s cycle survives. A server-provided delay
(``retry_after``) is honoured when it fits in the remaining budget; when it
does not, the error is raised at once. Jobs use this policy through the
clients; they never stack a second retry loop on top.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
import tenacity

T = TypeVar("T")

MAX_ATTEMPTS = 4  # 1 try + 3 retries
BASE_WAITS = (1.0, 2.0, 4.0)
JITTER = 0.1  # +/- 10 %
MAX_TOTAL_WAIT = 7.0

logger = structlog.get_logger(__name__)


def is_retryable(error: BaseException) -> bool:
    return bool(getattr(error, "retryable", False))


class _BackoffWait(tenacity.wait.wait_base):
    """1 -> 2 -> 4 s with jitter, or the server's ``retry_after``; never beyond the total budget."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        index = min(retry_state.attempt_number - 1, len(BASE_WAITS) - 1)
        wait = BASE_WAITS[index] * random.uniform(1 - JITTER, 1 + JITTER)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, float(retry_after))
        spent = getattr(retry_state, "_waited", 0.0)
        remaining = MAX_TOTAL_WAIT - spent
        wait = min(wait, max(remaining, 0.0))
        retry_state._waited = spent + wait  # type: ignore[attr-defined]
        return wait


def _retry_condition(retry_state: tenacity.RetryCallState) -> bool:
    if retry_state.outcome is None or not retry_state.outcome.failed:
        return False
    error = retry_state.outcome.exception()
    if not is_retryable(error):
        return False
    retry_after = getattr(error, "retry_after", None)
    waited = getattr(retry_state, "_waited", 0.0)
    # A server delay that cannot fit in the budget is not waited out here.
    return not (retry_after is not None and float(retry_after) > MAX_TOTAL_WAIT - waited)


def _log_retry(operation: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        logger.warning(
            "retrying",
            operation=operation,
            attempt=retry_state.attempt_number,
            max_attempts=MAX_ATTEMPTS,
            wait_s=round(retry_state.next_action.sleep, 3) if retry_state.next_action else None,
            reason=type(error).__name__,
            detail=str(error)[:200],
        )

    return before_sleep


def call_with_retry(
    operation: str,
    function: Callable[..., T],
    *args: Any,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, int], None] | None = None,
    **kwargs: Any,
) -> T:
    """Call ``function`` under the shared policy; ``sleep`` is injectable for tests."""

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        _log_retry(operation)(retry_state)
        if on_retry is not None and retry_state.outcome is not None:
            on_retry(retry_state.outcome.exception(), retry_state.attempt_number)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(MAX_ATTEMPTS),
        wait=_BackoffWait(),
        retry=_retry_condition,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return retrying(function, *args, **kwargs)
