"""Prometheus metrics of the whole system (served at /metrics).

INTERIM VERSION (foundation): the metric objects other modules import. The
observability issue owns this module (exposition view, multiprocess mode,
pool gauges); metric names and labels below are the contract.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

API_REQUEST_DURATION = Histogram(
    "api_request_duration_seconds",
    "HTTP request duration by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0),
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Scheduled job run duration.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
JOB_FAILURES = Counter("job_failures_total", "Job runs that ended in failure.", ["job"])
CACHE_REQUESTS = Counter("cache_requests_total", "Cache lookups by namespace and result.", ["namespace", "result"])
AI_TOKENS = Counter("ai_tokens_total", "AI tokens used.", ["provider", "direction"])
AI_COST_KRW = Counter("ai_estimated_cost_krw_total", "Estimated AI cost in KRW.", ["provider"])
EXCHANGE_CALLS = Counter(
    "exchange_calls_total",
    "Exchange HTTP calls by rate-limit group, endpoint and outcome.",
    ["group", "endpoint", "outcome"],
)
EXCHANGE_RETRIES = Counter("exchange_retries_total", "Retries of exchange calls.", ["group"])
EXCHANGE_RATE_LIMITED = Counter(
    "exchange_rate_limited_total", "429 and 418 answers from the exchange.", ["group", "status"]
)
