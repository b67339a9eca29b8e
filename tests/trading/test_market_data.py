"""collect_market_data: one Decimal-exact row per ticker, no duplicate timestamps, no transaction across the call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from paper_exchange.price_feed import FixedPriceFeed
from trading.clients.exchange.base import Ticker
from trading.clients.exchange.errors import ExchangeError
from trading.clients.exchange.paper import PaperExchange
from trading.models import MarketData
from trading.services.market_data import collect_market_data

pytestmark = pytest.mark.django_db
MOMENT = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)


class FakeTickerExchange:
    """The ticker part of the Exchange interface, recording whether a transaction was open during the call."""

    def __init__(self, timestamp: datetime = MOMENT) -> None:
        self.timestamp = timestamp
        self.in_transaction_during_call: list[bool] = []
        self.error: Exception | None = None

    def get_ticker(self, market: str) -> Ticker:
        self.in_transaction_during_call.append(connection.in_atomic_block and not connection.get_autocommit())
        if self.error:
            raise self.error
        return Ticker(
            market=market,
            trade_price=Decimal("143250000.12345678"),
            opening_price=Decimal("142000000"),
            high_price=Decimal("144000000.5"),
            low_price=Decimal("141500000"),
            acc_trade_volume_24h=Decimal("2411.12345678"),
            signed_change_rate=Decimal("-0.00880282"),
            timestamp=self.timestamp,
        )


def test_paper_exchange_ticker_is_stored_decimal_exact():
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("98765432.10987654")), clock=lambda: MOMENT)
    row = collect_market_data(exchange=exchange)
    stored = MarketData.objects.get(pk=row.pk)
    ticker = exchange.get_ticker("KRW-BTC")
    assert stored.symbol == "KRW-BTC"
    assert stored.trade_price == Decimal("98765432.10987654") == ticker.trade_price
    assert isinstance(stored.trade_price, Decimal)
    assert stored.high_price == ticker.high_price and stored.low_price == ticker.low_price
    assert stored.trade_volume == ticker.acc_trade_volume_24h
    assert stored.change_rate == ticker.signed_change_rate
    assert stored.timestamp == MOMENT


def test_fake_exchange_row_keeps_every_field():
    exchange = FakeTickerExchange()
    collect_market_data(exchange=exchange)
    row = MarketData.objects.get()
    assert (row.trade_price, row.high_price, row.trade_volume, row.change_rate) == (
        Decimal("143250000.12345678"),
        Decimal("144000000.5"),
        Decimal("2411.12345678"),
        Decimal("-0.00880282"),
    )


def test_the_same_exchange_timestamp_is_not_stored_twice():
    exchange = FakeTickerExchange()
    assert collect_market_data(exchange=exchange) is not None
    assert collect_market_data(exchange=exchange) is None
    exchange.timestamp = MOMENT + timedelta(seconds=10)
    assert collect_market_data(exchange=exchange) is not None
    assert MarketData.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_during_the_exchange_call_and_a_failure_stores_nothing():
    exchange = FakeTickerExchange()
    collect_market_data(exchange=exchange)
    assert exchange.in_transaction_during_call == [False]
    exchange.error = ExchangeError("down")
    with pytest.raises(ExchangeError):
        collect_market_data(exchange=exchange)
    assert MarketData.objects.count() == 1


def test_default_exchange_is_the_process_exchange(settings):
    from trading.clients.exchange import get_exchange

    row = collect_market_data()
    assert row.symbol == settings.TRADING_MARKET
    assert get_exchange().name == "paper"
    assert isinstance(row.trade_price, Decimal) and row.trade_price > 0
