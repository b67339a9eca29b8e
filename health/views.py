"""Health and metrics endpoints (views stay thin: the work is in ``health.runner`` and ``health.metrics``).

Access policy (README "Health, logs and metrics"):
- ``/health/``        liveness, public, touches nothing.
- ``/health/detail``  public summary (overall status, timestamp, version, component
                      names and statuses); ``message`` and ``latency_ms`` only for a
                      staff session or ``Authorization: Bearer <HEALTH_DETAIL_TOKEN>``.
- ``/metrics``        open (serve it on the internal network only); when
                      HEALTH_DETAIL_TOKEN is set the same bearer token is required.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views import View
from health_check.views import HealthCheckView

from health.checks import HEALTH_CHECKS
from health.metrics import exposition
from health.runner import UNHEALTHY, run_checks


def liveness(request: HttpRequest) -> JsonResponse:
    """Cheap liveness probe: the process answers; no dependency is touched."""
    return JsonResponse({"status": "ok"})


def bearer_token_matches(request: HttpRequest) -> bool:
    """``Authorization: Bearer <HEALTH_DETAIL_TOKEN>``, compared in constant time."""
    expected = settings.HEALTH_DETAIL_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def may_read_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff) or bearer_token_matches(request)


class DetailedHealthView(HealthCheckView):
    """``GET /health/detail``: the six checks, concurrently, each within HEALTH_CHECK_TIMEOUT.

    Subclasses django-health-check's view so ``manage.py health_check health-detail --no-http``
    discovers the same ``checks``; the response is ours: 200 healthy/degraded, 503 unhealthy.
    """

    checks = HEALTH_CHECKS

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        response = View.dispatch(self, request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:  # type: ignore[override]
        report = run_checks(
            list(self.get_checks()), timeout=settings.HEALTH_CHECK_TIMEOUT, version=settings.APP_VERSION
        )
        body = report.as_dict()
        if not may_read_details(request):
            body["components"] = [
                {"name": component["name"], "status": component["status"]} for component in body["components"]
            ]
        return JsonResponse(body, status=503 if report.status == UNHEALTHY else 200)


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition (all processes' samples in multiprocess mode)."""
    if settings.HEALTH_DETAIL_TOKEN and not bearer_token_matches(request):
        return HttpResponse("bearer token required\n", status=401, content_type="text/plain; charset=utf-8")
    payload, content_type = exposition(settings.PROMETHEUS_MULTIPROC_DIR or None)
    return HttpResponse(payload, content_type=content_type)
