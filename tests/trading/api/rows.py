"""Row builders shared by the API and selector tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from tests.factories import market_data
from trading.models import MarketData, Order, TradingSignal


def make_market_rows(count: int, *, every: dt.timedelta = dt.timedelta(seconds=10), end=None, symbol=None):
    """``count`` samples ending at ``end`` (newest last), prices 100, 101, ... in time order."""
    end = end or timezone.now() - dt.timedelta(seconds=1)
    symbol = symbol or settings.TRADING_MARKET
    rows = []
    for index in range(count):
        moment = end - every * (count - 1 - index)
        price = Decimal(100 + index)
        rows.append(
            market_data(
                price,
                moment,
                symbol=symbol,
                opening_price=Decimal("100"),
                high_price=price + 1,
                low_price=price - 1,
                trade_volume=Decimal("12.5"),
                change_rate=Decimal("0.001"),
            )
        )
    return MarketData.objects.bulk_create(rows)


def make_signals(count: int, *, end=None, signal_type: str | None = None) -> list[TradingSignal]:
    end = end or timezone.now() - dt.timedelta(seconds=1)
    types = ["BUY", "SELL", "HOLD"]
    return TradingSignal.objects.bulk_create(
        [
            TradingSignal(
                signal_type=signal_type or types[index % 3],
                confidence=Decimal("0.75"),
                reasoning=f"reason {index}",
                provider="rule_based",
                model_name="rules-v1",
                input_tokens=1000 + index,
                output_tokens=100 + index,
                latency_ms=20,
                created_at=end - dt.timedelta(minutes=index),
            )
            for index in range(count)
        ]
    )


def make_orders(count: int, *, end=None, with_signals: bool = True) -> list[Order]:
    end = end or timezone.now() - dt.timedelta(seconds=1)
    signals = make_signals(count, end=end) if with_signals else [None] * count
    statuses = ["FILLED", "CANCELLED", "SUBMITTED", "PENDING", "FAILED"]
    return Order.objects.bulk_create(
        [
            Order(
                market=settings.TRADING_MARKET,
                side="bid",
                ord_type="price",
                price=Decimal("100000"),
                status=statuses[index % 5],
                signal=signals[index],
                executed_volume=Decimal("0.001"),
                executed_funds=Decimal("90000"),
                created_at=end - dt.timedelta(minutes=index),
            )
            for index in range(count)
        ]
    )
