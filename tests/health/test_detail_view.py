"""GET /health/detail: aggregation, 200 vs 503, access policy, a hanging check, the CLI command."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command

URL = "/health/detail"
TOKEN = "monitoring-token-0123456789"
COMPONENTS = ["database", "upbit_api", "gemini_api", "scheduler", "recent_signal", "recent_order"]

pytestmark = pytest.mark.django_db(transaction=True)  # the checks run in their own threads


@pytest.fixture
def token(settings) -> str:
    settings.HEALTH_DETAIL_TOKEN = TOKEN
    return TOKEN


def detail(client, **headers):
    return client.get(URL, HTTP_HOST="localhost", **headers)


def test_all_healthy_is_200_with_six_components(client, healthy_system, token):
    response = detail(client, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy", body
    assert body["version"] == "0.1.0"
    assert body["timestamp"].endswith("Z")
    assert [component["name"] for component in body["components"]] == COMPONENTS
    for component in body["components"]:
        assert component["status"] == "healthy"
        assert isinstance(component["latency_ms"], float)
        assert component["message"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_warning_makes_it_degraded_but_still_200(client, healthy_system, provider_double, token):
    from trading.clients.ai.base import ProviderStatus

    provider_double.result = ProviderStatus(True, "per-day quota exhausted", warning=True)
    response = detail(client, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    gemini = body["components"][2]
    assert (gemini["name"], gemini["status"], gemini["message"]) == ("gemini_api", "warning", "per-day quota exhausted")


def test_an_unhealthy_component_makes_it_503(client, exchange_double, provider_double, schedules, recent_signal):
    # no cluster stats in the shared cache: scheduler is unhealthy
    from django.core.management import call_command as run

    run("createcachetable", "django_shared_cache", verbosity=0)
    response = detail(client)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert {"name": "scheduler", "status": "unhealthy"} in body["components"]


def test_anonymous_callers_get_statuses_only(client, healthy_system, token):
    body = detail(client).json()
    assert body["status"] == "healthy"
    assert body["components"][0] == {"name": "database", "status": "healthy"}
    wrong = detail(client, HTTP_AUTHORIZATION="Bearer not-the-token").json()
    assert set(wrong["components"][0]) == {"name", "status"}


def test_staff_session_gets_details(client, healthy_system, staff_user):
    client.force_login(staff_user)
    body = detail(client).json()
    assert set(body["components"][0]) == {"name", "status", "latency_ms", "message"}


def test_plain_user_does_not_get_details(client, healthy_system, plain_user):
    client.force_login(plain_user)
    body = detail(client).json()
    assert set(body["components"][0]) == {"name", "status"}


def test_no_token_configured_means_no_bearer_access(client, healthy_system, settings):
    settings.HEALTH_DETAIL_TOKEN = ""
    body = detail(client, HTTP_AUTHORIZATION="Bearer ").json()
    assert set(body["components"][0]) == {"name", "status"}


def test_a_hanging_dependency_does_not_delay_the_response(client, healthy_system, exchange_double, token, settings):
    """SC-005: one dependency hangs for 5 s; the whole answer still comes within 1 s."""
    settings.HEALTH_CHECK_TIMEOUT = 0.8
    release = threading.Event()
    exchange_double.hang = release
    try:
        started = time.perf_counter()
        response = detail(client, HTTP_AUTHORIZATION=f"Bearer {token}")
        elapsed = time.perf_counter() - started
    finally:
        release.set()
    assert elapsed < 1.0, elapsed
    assert response.status_code == 503
    body = response.json()
    upbit = body["components"][1]
    assert upbit == {"name": "upbit_api", "status": "unhealthy", "latency_ms": None, "message": "timed out after 0.8 s"}
    assert all(component["status"] == "healthy" for i, component in enumerate(body["components"]) if i != 1)


def test_health_check_command_runs_our_checks(healthy_system):
    stdout = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("health_check", "health-detail", "--no-http", stdout=stdout)
    assert exited.value.code == 0, stdout.getvalue()
    output = stdout.getvalue().splitlines()
    assert output == [f"{name}: OK" for name in COMPONENTS]


def test_health_check_command_fails_when_a_component_is_down(exchange_double, provider_double, schedules):
    stdout = StringIO()
    exchange_double.error = ConnectionError("connection refused")
    with pytest.raises(SystemExit) as exited:
        call_command("health_check", "health-detail", "--no-http", stdout=stdout)
    assert exited.value.code == 1
    assert "upbit_api: Unavailable: ConnectionError: connection refused" in stdout.getvalue()


def test_liveness_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/", HTTP_HOST="localhost")
    assert response.json() == {"status": "ok"}
