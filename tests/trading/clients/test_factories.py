"""The process-wide exchange and signal-provider factories follow the settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.gemini import MODEL
from trading.clients import ai, exchange, singleton
from trading.clients.ai.gemini import GeminiSignalProvider
from trading.clients.ai.rule_based import RuleBasedSignalProvider
from trading.clients.exchange.paper import PaperExchange


@pytest.fixture(autouse=True)
def _fresh_singletons():
    exchange.reset_exchange()
    ai.reset_signal_provider()
    yield
    exchange.reset_exchange()
    ai.reset_signal_provider()


@pytest.mark.django_db
def test_paper_is_the_default_exchange_and_a_singleton(settings):
    settings.EXCHANGE = "paper"
    first = exchange.get_exchange()
    assert isinstance(first, PaperExchange) and first.name == "paper"
    assert exchange.get_exchange() is first
    assert first.get_ticker(settings.TRADING_MARKET).trade_price > Decimal(0)
    exchange.reset_exchange()
    assert exchange.get_exchange() is not first


def test_upbit_exchange_is_built_from_the_settings(settings, fake_upbit):
    from trading.clients.exchange.upbit import UpbitExchange

    settings.EXCHANGE = "upbit"
    settings.UPBIT_API_URL = fake_upbit.url
    settings.UPBIT_ACCESS_KEY = "factory-access"
    settings.UPBIT_SECRET_KEY = "factory-secret"
    settings.UPBIT_CONNECT_TIMEOUT = 1.5
    settings.UPBIT_READ_TIMEOUT = 2.5
    built = exchange.get_exchange()
    assert isinstance(built, UpbitExchange)
    assert exchange.get_exchange() is built
    ticker = built.get_ticker("KRW-BTC")  # really talks to the configured URL
    assert ticker.market == "KRW-BTC"
    assert fake_upbit.requests and fake_upbit.requests[-1].path == "/v1/ticker"


def test_reset_closes_the_instance(settings, monkeypatch):
    settings.EXCHANGE = "paper"
    built = exchange.get_exchange()
    closed = []
    monkeypatch.setattr(built, "close", lambda: closed.append(True))
    exchange.reset_exchange()
    assert closed == [True]
    exchange.reset_exchange()  # nothing to close: no error


def test_a_forked_child_builds_its_own_instance_and_leaves_the_parents_alone(settings, monkeypatch):
    settings.EXCHANGE = "paper"
    parent = exchange.get_exchange()
    closed = []
    monkeypatch.setattr(parent, "close", lambda: closed.append(True))
    real_pid = singleton.os.getpid()
    monkeypatch.setattr(singleton.os, "getpid", lambda: real_pid + 1)
    child = exchange.get_exchange()
    assert child is not parent and closed == []


def test_unknown_exchange_setting_is_a_clear_error(settings):
    settings.EXCHANGE = "kraken"
    with pytest.raises(ValueError, match="unknown EXCHANGE 'kraken'"):
        exchange.get_exchange()


def test_rule_based_provider_without_a_gemini_key(settings):
    settings.GEMINI_API_KEY = ""
    provider = ai.get_signal_provider()
    assert isinstance(provider, RuleBasedSignalProvider)
    assert ai.get_signal_provider() is provider
    assert provider.status().available


def test_gemini_provider_with_a_key_uses_the_configured_service(gemini_settings, fake_gemini):
    provider = ai.get_signal_provider()
    assert isinstance(provider, GeminiSignalProvider) and provider.model_name == MODEL
    assert provider.status().available
    assert fake_gemini.calls("/v1beta/models", "GET")
    ai.reset_signal_provider()
    gemini_settings.GEMINI_API_KEY = ""
    assert isinstance(ai.get_signal_provider(), RuleBasedSignalProvider)


def test_a_forked_child_gets_its_own_provider(settings, monkeypatch):
    settings.GEMINI_API_KEY = ""
    parent = ai.get_signal_provider()
    real_pid = singleton.os.getpid()
    monkeypatch.setattr(singleton.os, "getpid", lambda: real_pid + 1)
    assert ai.get_signal_provider() is not parent
