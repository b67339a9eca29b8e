"""Volatility guard (SQL range, pause/resume, one notification per transition) and the exit trigger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_market_data
from trading.models import Position
from trading.services import config
from trading.services import order_execution as order_execution_module
from trading.services.volatility import (
    PAUSE_REASON_PREFIX,
    check_exit_thresholds,
    check_volatility,
    exit_reason_for,
    volatility_pct,
)

pytestmark = pytest.mark.django_db
MARKET = "KRW-BTC"


def _prices(prices: list[str], *, now=None, step_s: int = 10, market: str = MARKET) -> None:
    now = now or timezone.now()
    for index, price in enumerate(reversed(prices)):
        make_market_data(Decimal(price), now - timedelta(seconds=index * step_s), symbol=market)


@pytest.fixture
def close_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(order_execution_module, "close_position", lambda reason: calls.append(reason))
    return calls


def test_volatility_is_the_range_over_the_window_in_one_query():
    now = timezone.now()
    _prices(["100000000", "101000000", "99000000", "100500000"], now=now)
    # Outside the 10 min window: must not count.
    _prices(["50000000"], now=now - timedelta(minutes=11))
    # Another market: must not count.
    _prices(["1"], now=now, market="KRW-ETH")
    with CaptureQueriesContext(connection) as queries:
        pct, samples = volatility_pct(MARKET, 10, now=now)
    assert len(queries) == 1
    assert samples == 4
    assert pct == (Decimal("101000000") - Decimal("99000000")) / Decimal("99000000") * 100


def test_too_few_samples_is_not_a_volatility():
    _prices(["100"])
    result = check_volatility()
    assert result.volatility_pct is None and result.action == "insufficient_data"
    assert config.get_value("trading_paused") is False


def test_spike_pauses_trading_and_notifies_once(fake_slack, close_calls):
    _prices(["100000000", "104000000"])  # 4 % > 3 %
    first = check_volatility()
    assert first.action == "paused"
    assert config.get_value("trading_paused") is True
    assert config.get_value("trading_pause_reason").startswith(PAUSE_REASON_PREFIX)
    second = check_volatility()
    assert second.action == "none"
    assert len(fake_slack.messages) == 1
    assert fake_slack.messages[0].startswith("Trading paused: KRW-BTC moved 4.00% in 10 min")


def test_calm_market_resumes_only_with_auto_resume(fake_slack, close_calls):
    now = timezone.now()
    _prices(["100000000", "104000000"], now=now - timedelta(minutes=5))
    check_volatility(now=now)
    config.set_value("volatility_auto_resume", False)
    later = now + timedelta(minutes=6)  # the spike left the window
    _prices(["104000000", "104100000"], now=later)
    assert check_volatility(now=later).action == "none"
    assert config.get_value("trading_paused") is True

    config.set_value("volatility_auto_resume", True)
    assert check_volatility(now=later).action == "resumed"
    assert config.get_value("trading_paused") is False
    assert config.get_value("trading_pause_reason") == ""
    assert [m.split(":")[0] for m in fake_slack.messages] == ["Trading paused", "Trading resumed"]


def test_an_operators_pause_is_never_auto_resumed(fake_slack, close_calls):
    config.set_value("volatility_auto_resume", True)
    config.set_value("trading_paused", True)
    config.set_value("trading_pause_reason", "maintenance by operator")
    _prices(["100000000", "100100000"])
    assert check_volatility().action == "none"
    assert config.get_value("trading_paused") is True
    assert config.get_value("trading_pause_reason") == "maintenance by operator"
    assert fake_slack.messages == []


def test_threshold_comes_from_config(close_calls):
    _prices(["100000000", "104000000"])
    config.set_value("volatility_threshold_pct", Decimal("5"))
    assert check_volatility().action == "none"


def _position(quantity: str, average: str) -> Position:
    return Position.objects.update_or_create(
        symbol=MARKET, defaults={"quantity": Decimal(quantity), "average_buy_price": Decimal(average)}
    )[0]


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("95000000", "stop_loss"),  # exactly -5 %
        ("95000001", None),
        ("110000000", "take_profit"),  # exactly +10 %
        ("109999999", None),
    ],
)
def test_exit_thresholds(price, expected):
    position = _position("0.01", "100000000")
    assert exit_reason_for(position, Decimal(price)) == expected


def test_stop_loss_calls_close_position_from_the_volatility_check(close_calls):
    _position("0.01", "100000000")
    _prices(["94000000"])
    result = check_volatility()
    assert result.exit_reason == "stop_loss"
    assert close_calls == ["stop_loss"]


def test_take_profit_calls_close_position(close_calls):
    _position("0.01", "100000000")
    _prices(["111000000"])
    assert check_exit_thresholds() == "take_profit"
    assert close_calls == ["take_profit"]


def test_no_position_or_price_inside_the_band_closes_nothing(close_calls):
    _prices(["50000000"])
    assert check_exit_thresholds() is None
    _position("0", "100000000")
    assert check_exit_thresholds() is None
    _position("0.01", "51000000")
    assert check_exit_thresholds() is None
    assert close_calls == []


def test_stale_stored_price_falls_back_to_the_cached_ticker(monkeypatch, close_calls):
    from types import SimpleNamespace

    from trading.services import exchange_cache

    _position("0.01", "100000000")
    _prices(["50000000"], now=timezone.now() - timedelta(minutes=5))  # old: ignored
    monkeypatch.setattr(exchange_cache, "get_ticker", lambda market: SimpleNamespace(trade_price=Decimal("120000000")))
    assert check_exit_thresholds() == "take_profit"
