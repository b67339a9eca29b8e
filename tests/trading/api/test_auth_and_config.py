"""Authentication, staff-only writes through the config service, throttling, system endpoints."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from trading.api import urls as api_urls
from trading.services import cache_stats
from trading.services.config import get_value

pytestmark = pytest.mark.django_db

READ_URLS = [
    "/api/v1/market/latest",
    "/api/v1/market/history",
    "/api/v1/market/stats",
    "/api/v1/signals",
    "/api/v1/signals/1",
    "/api/v1/orders",
    "/api/v1/orders/1",
    "/api/v1/position",
    "/api/v1/dashboard",
    "/api/v1/ai/usage",
    "/api/v1/config",
    "/api/v1/config/stop_loss_pct",
    "/api/v1/system/version",
    "/api/v1/system/cache-stats",
]
WRITES = [
    ("put", "/api/v1/config/stop_loss_pct", {"value": "7"}),
    ("patch", "/api/v1/config/stop_loss_pct", {"value": "7"}),
    ("post", "/api/v1/trading/enable", {}),
    ("post", "/api/v1/trading/disable", {}),
]


PUBLIC_ROUTES = {"schema", "docs"}  # the OpenAPI schema and its viewer are public on purpose
SAMPLE_PATH_VALUES = {"int": "1", "str": "stop_loss_pct"}


def every_api_request() -> list[tuple[str, str]]:
    """(method, path) for every method of every route in trading/api/urls.py, so new endpoints are covered."""
    requests = []
    for pattern in api_urls.urlpatterns:
        if pattern.name in PUBLIC_ROUTES:
            continue
        route = re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE_PATH_VALUES[m.group(1) or "str"], str(pattern.pattern))
        view_class = pattern.callback.view_class
        requests += [
            (method, f"/api/{route}") for method in view_class.http_method_names if hasattr(view_class, method)
        ]
    return requests


def test_every_route_is_covered_by_the_credentials_test():
    routes = {path for _, path in every_api_request()}
    assert len(routes) == len(api_urls.urlpatterns) - len(PUBLIC_ROUTES) >= 16
    assert all(path.startswith("/api/v1/") for path in routes)


@pytest.mark.parametrize(("method", "path"), every_api_request())
@pytest.mark.parametrize("credentials", ["none", "bad_token", "bad_session_cookie"])
def test_every_api_endpoint_refuses_missing_or_bad_credentials(method, path, credentials):
    client = APIClient()
    if credentials == "bad_token":
        client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    elif credentials == "bad_session_cookie":
        client.cookies["sessionid"] = "not-a-session"
    response = getattr(client, method)(path, {"value": "7", "reason": "x"}, format="json")
    assert response.status_code in (401, 403), (method, path, response.status_code)
    assert get_value("stop_loss_pct") == 5 and get_value("trading_enabled") is True


@pytest.mark.parametrize("url", READ_URLS)
def test_anonymous_reads_are_refused(anonymous_client, url):
    assert anonymous_client.get(url).status_code in (401, 403)


@pytest.mark.parametrize(("method", "url", "body"), WRITES)
def test_anonymous_and_non_staff_writes_are_forbidden(anonymous_client, user_client, method, url, body):
    assert getattr(anonymous_client, method)(url, body, format="json").status_code in (401, 403)
    assert getattr(user_client, method)(url, body, format="json").status_code == 403
    assert get_value("stop_loss_pct") == 5 and get_value("trading_enabled") is True


def test_token_authentication_works(plain_user):
    token = Token.objects.create(user=plain_user)
    client = APIClient()
    assert client.get("/api/v1/system/version").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/system/version").status_code == 200


def test_session_authentication_works(client, plain_user):
    client.force_login(plain_user)
    assert client.get("/api/v1/config").status_code == 200


def test_staff_config_write_goes_through_the_config_service(staff_client):
    response = staff_client.patch("/api/v1/config/stop_loss_pct", {"value": "7.5"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["value"] == "7.5"
    assert response.json()["value_type"] == "decimal"
    assert str(get_value("stop_loss_pct")) == "7.5"
    response = staff_client.put("/api/v1/config/signal_interval_minutes", {"value": 15}, format="json")
    assert response.json()["value"] == 15
    assert get_value("signal_interval_minutes") == 15
    assert staff_client.get("/api/v1/config/signal_interval_minutes").json()["value"] == 15


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stop_loss_pct", "0"),  # under the minimum
        ("stop_loss_pct", "abc"),
        ("stop_loss_pct", 1.5),  # floats never carry money
        ("stop_loss_pct", "NaN"),
        ("trading_enabled", "maybe"),
        ("signal_interval_minutes", "1e9"),
        ("signal_interval_minutes", None),
        ("signal_interval_minutes", {"nested": 1}),
    ],
)
def test_invalid_config_value_is_a_400_on_value_and_nothing_changes(staff_client, key, value):
    before = get_value(key)
    response = staff_client.patch(f"/api/v1/config/{key}", {"value": value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["value"][0]
    assert get_value(key) == before


def test_config_write_needs_a_value(staff_client):
    response = staff_client.put("/api/v1/config/stop_loss_pct", {}, format="json")
    assert response.status_code == 400
    assert "value" in response.json()


def test_config_write_of_unknown_key_is_404(staff_client):
    assert staff_client.patch("/api/v1/config/nope", {"value": "1"}, format="json").status_code == 404


def test_config_list_shows_typed_values(user_client):
    entries = {entry["key"]: entry for entry in user_client.get("/api/v1/config").json()}
    assert entries["trading_enabled"]["value"] is True
    assert entries["trading_enabled"]["value_type"] == "bool"
    assert entries["stop_loss_pct"]["value"] == "5"
    assert entries["signal_interval_minutes"]["value"] == 30
    assert entries["stop_loss_pct"]["description"]


def test_disable_and_enable_trading(staff_client, user_client):
    response = staff_client.post("/api/v1/trading/disable", {"reason": "maintenance"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"enabled": False, "paused": False, "pause_reason": "maintenance", "active": False}
    assert get_value("trading_enabled") is False
    assert user_client.get("/api/v1/dashboard").json()["trading"]["enabled"] is False

    response = staff_client.post("/api/v1/trading/enable")
    assert response.json() == {"enabled": True, "paused": False, "pause_reason": "", "active": True}
    assert get_value("trading_enabled") is True


def test_disable_reason_is_validated(staff_client):
    response = staff_client.post("/api/v1/trading/disable", {"reason": "x" * 301}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()


def test_writes_are_throttled_at_30_per_minute(staff_client):
    codes = [staff_client.post("/api/v1/trading/enable").status_code for _ in range(31)]
    assert codes[:30] == [200] * 30
    assert codes[30] == 429
    # Reads are not throttled.
    assert staff_client.get("/api/v1/config/trading_enabled").status_code == 200


def test_write_throttle_counts_in_the_shared_cache_so_every_worker_sees_it(staff_client, staff_user):
    from django.core.cache import caches

    from trading.api.views import SharedScopedRateThrottle

    staff_client.post("/api/v1/trading/enable")
    key = SharedScopedRateThrottle.cache_format % {"scope": "writes", "ident": staff_user.pk}
    assert len(caches["shared"].get(key)) == 1
    assert caches["default"].get(key) is None


def test_cache_stats_is_staff_only(user_client, staff_client):
    cache_stats.record("config", True)
    assert user_client.get("/api/v1/system/cache-stats").status_code == 403
    response = staff_client.get("/api/v1/system/cache-stats")
    assert response.status_code == 200
    assert response.json() == cache_stats.snapshot()


@override_settings(GEMINI_API_KEY="test-key", EXCHANGE="upbit")
def test_version_reports_exchange_and_signal_provider(user_client):
    import django
    from django.conf import settings

    body = user_client.get("/api/v1/system/version").json()
    assert body == {
        "version": settings.APP_VERSION,
        "django": django.get_version(),
        "exchange": "upbit",
        "signal_provider": "gemini",
        "market": "KRW-BTC",
    }


def test_version_defaults_to_rule_based_paper(user_client):
    body = user_client.get("/api/v1/system/version").json()
    assert (body["exchange"], body["signal_provider"]) == ("paper", "rule_based")
