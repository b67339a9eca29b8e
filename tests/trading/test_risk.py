"""Risk checks: config switches, confidence, sizing against max position, balance and the minimum."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.trading.order_support import RecordingExchange, make_signal, paper_exchange
from trading.models import Position
from trading.services import config as config_service
from trading.services import risk

pytestmark = pytest.mark.django_db
D = Decimal


def _position(quantity: str = "0", average: str = "0") -> Position:
    return Position(symbol="KRW-BTC", quantity=D(quantity), average_buy_price=D(average))


def test_buy_uses_order_amount_with_the_default_config() -> None:
    decision = risk.check_signal(make_signal("BUY", "0.9"), _position(), paper_exchange())
    assert decision.allowed
    assert (decision.side, decision.ord_type, decision.price, decision.volume) == ("bid", "price", D("100000"), None)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("trading_enabled", False, "disabled"),
        ("trading_paused", True, "paused"),
        ("min_confidence", D("0.95"), "below min_confidence"),
    ],
)
def test_switches_and_confidence_refuse_with_a_reason(key, value, words) -> None:
    config_service.set_value(key, value)
    decision = risk.check_signal(make_signal("BUY", "0.9"), _position(), paper_exchange())
    assert not decision.allowed
    assert words in decision.reason


def test_pause_reason_is_reported() -> None:
    config_service.set_value("trading_paused", True)
    config_service.set_value("trading_pause_reason", "volatility 4.2% over 10 min")
    decision = risk.check_signal(make_signal("BUY"), _position(), paper_exchange())
    assert "volatility 4.2%" in decision.reason


def test_buy_is_capped_by_room_and_refused_under_the_minimum() -> None:
    config_service.set_value("max_position_krw", D("150000"))
    exchange = paper_exchange(D("100000000"))
    capped = risk.check_signal(make_signal("BUY"), _position("0.001"), exchange)
    assert capped.allowed and capped.price == D("50000")
    refused = risk.check_signal(make_signal("BUY"), _position("0.00148"), exchange)
    assert not refused.allowed and "max_position_krw" in refused.reason


def test_buy_is_capped_by_free_krw_including_the_fee() -> None:
    exchange = paper_exchange()
    free_krw = next(b.balance for b in exchange.get_accounts() if b.currency == "KRW")
    config_service.set_value("order_amount_krw", D("1000000000"))
    config_service.set_value("max_position_krw", D("10000000000"))
    decision = risk.check_signal(make_signal("BUY"), _position(), exchange)
    assert decision.allowed
    assert decision.price * D("1.0005") <= free_krw
    assert decision.price > free_krw * D("0.999")


def test_sell_sells_the_whole_position_or_refuses() -> None:
    exchange = paper_exchange()
    assert "no position" in risk.check_signal(make_signal("SELL"), _position(), exchange).reason
    exchange.place_order(market="KRW-BTC", side="bid", ord_type="price", identifier="risk-1", price=D("200000"))
    held = next(b.balance for b in exchange.get_accounts() if b.currency == "BTC")
    decision = risk.check_signal(make_signal("SELL"), _position(str(held)), exchange)
    assert decision.allowed and decision.volume == held and decision.ord_type == "market"
    tiny = risk.check_signal(make_signal("SELL"), _position("0.00001"), RecordingExchange(paper_exchange()))
    assert not tiny.allowed and "below the minimum" in tiny.reason


def test_close_refuses_unknown_reasons() -> None:
    assert not risk.check_close(_position("0.001", "1"), "because").allowed
