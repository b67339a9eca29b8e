"""Request middlewares: request-id echo, and API request metrics + log events.

Order in ``MIDDLEWARE``::

    health.middleware.RequestIdMiddleware          # before django-structlog: validates X-Request-ID
    ...
    django_structlog.middlewares.RequestMiddleware # binds request_id (TRUST_UPSTREAM_REQUEST_ID)
    health.middleware.RequestMetricsMiddleware     # inside it, so its event carries request_id
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from health.metrics import API_REQUEST_DURATION

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
UNMATCHED_ROUTE = "unmatched"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

logger = structlog.get_logger("health.requests")


def valid_request_id(value: str | None) -> str:
    """``value`` when it is a safe request id (<= 64 of [A-Za-z0-9._-]), else a new uuid4."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return str(uuid.uuid4())


class RequestIdMiddleware:
    """Accept a valid upstream ``X-Request-ID`` (or make one) and echo it in the response.

    django-structlog (``DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True``) then
    binds the same value as ``request_id`` on every log line of the request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = valid_request_id(request.META.get(_REQUEST_ID_META))
        request.META[_REQUEST_ID_META] = request_id
        request.__dict__.pop("headers", None)  # HttpRequest.headers is cached from META
        request.request_id = request_id
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def route_of(request: HttpRequest) -> str:
    """The URL pattern (``/api/orders/<int:pk>/``), never the raw path: bounded label cardinality."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return UNMATCHED_ROUTE
    return "/" + match.route.lstrip("^").rstrip("$")


class RequestMetricsMiddleware:
    """Observe ``api_request_duration_seconds`` and log one ``api_request`` event per request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in _KNOWN_METHODS else "OTHER"
        API_REQUEST_DURATION.labels(route=route, method=method, status=str(response.status_code)).observe(duration)
        logger.info(
            "api_request",
            route=route,
            method=method,
            status=response.status_code,
            duration_ms=round(duration * 1000, 3),
        )
        return response
