"""The checks against the real factories and clients (fake Gemini on 127.0.0.1, paper exchange)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from health import checks
from health.runner import HEALTHY, UNHEALTHY, WARNING, evaluate
from tests.fakes.gemini import quota_body
from tests.fakes.http import Fault

TOKEN = "monitoring-token-0123456789"


@pytest.fixture
def real_gemini(gemini_settings) -> Iterator[None]:
    """``get_signal_provider()`` builds the real GeminiSignalProvider against the fake."""
    from trading.clients.ai import reset_signal_provider

    reset_signal_provider()
    yield
    reset_signal_provider()


@pytest.mark.django_db
def test_gemini_reachable_is_healthy_and_the_key_never_shows(real_gemini, fake_gemini):
    from tests.fakes.gemini import TEST_GEMINI_KEY

    result = evaluate(checks.SignalProviderCheck())
    assert result.status == HEALTHY, result.message
    assert "Gemini reachable" in result.message
    assert TEST_GEMINI_KEY not in result.message


@pytest.mark.django_db
def test_gemini_rate_limiting_the_models_list_is_a_warning(real_gemini, fake_gemini):
    fake_gemini.add_fault(Fault.status(429, quota_body(per_day=True)), path="/v1beta/models", times=5)
    result = evaluate(checks.SignalProviderCheck())
    assert result.status == WARNING, result.message


@pytest.mark.django_db
def test_gemini_refusing_the_key_is_unhealthy(real_gemini, fake_gemini, settings):
    settings.GEMINI_API_KEY = "AIzaSyWrongWrongWrongWrongWrongWrong123"
    from trading.clients.ai import reset_signal_provider

    reset_signal_provider()
    result = evaluate(checks.SignalProviderCheck())
    assert result.status == UNHEALTHY
    assert "AIzaSyWrong" not in result.message


@pytest.mark.django_db(transaction=True)
def test_a_hanging_gemini_does_not_delay_health_detail(
    client, real_gemini, fake_gemini, exchange_double, live_cluster, schedules, recent_signal, settings
):
    """SC-005 against a real HTTP dependency that never answers in time."""
    settings.HEALTH_DETAIL_TOKEN = TOKEN
    settings.HEALTH_CHECK_TIMEOUT = 0.8
    fake_gemini.hang(5, path="/v1beta/models")
    started = time.perf_counter()
    response = client.get("/health/detail", HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed
    assert response.status_code == 503
    gemini = response.json()["components"][2]
    assert gemini["name"] == "gemini_api"
    assert gemini["status"] == "unhealthy"
    assert gemini["latency_ms"] is None


@pytest.fixture
def real_upbit(upbit_settings) -> Iterator[None]:
    """``get_exchange()`` builds the real UpbitExchange against the fake Upbit."""
    from trading.clients.exchange import reset_exchange

    reset_exchange()
    yield
    reset_exchange()


@pytest.mark.django_db
def test_upbit_answering_the_ticker_is_healthy(real_upbit, fake_upbit):
    result = evaluate(checks.ExchangeCheck())
    assert (result.status, result.message) == (HEALTHY, "upbit answers the KRW-BTC ticker")
    assert fake_upbit.calls("/v1/ticker", "GET")


@pytest.mark.django_db
def test_upbit_refusing_the_ticker_is_unhealthy(real_upbit, fake_upbit):
    fake_upbit.add_fault(
        Fault.status(400, {"error": {"name": "invalid_market", "message": "bad market"}}), path="/v1/ticker", times=5
    )
    result = evaluate(checks.ExchangeCheck())
    assert result.status == UNHEALTHY, result.message
