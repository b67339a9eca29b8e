"""Position, dashboard and AI usage: Decimal P&L, today's counts, trading switch, cost per day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.trading.api.rows import make_market_rows, make_orders, make_signals
from trading.models import Position, TradingSignal
from trading.services.config import set_value

pytestmark = pytest.mark.django_db


def test_position_with_unrealized_pnl_in_exact_decimals(user_client):
    Position.objects.create(symbol="KRW-BTC", quantity=Decimal("0.12345678"), average_buy_price=Decimal("90000000"))
    make_market_rows(1)  # latest price 100
    rows = make_market_rows(1)
    rows[0].trade_price = Decimal("91234567.5")
    rows[0].save()
    body = user_client.get("/api/v1/position").json()
    cost = Decimal("0.12345678") * Decimal("90000000")
    value = Decimal("0.12345678") * Decimal("91234567.5")
    assert Decimal(body["cost_krw"]) == cost
    assert Decimal(body["latest_price"]) == Decimal("91234567.5")
    assert Decimal(body["unrealized_pnl_krw"]) == (value - cost).quantize(Decimal("0.00000001"))
    assert body["unrealized_pnl_pct"] == str(((value - cost) / cost * 100).quantize(Decimal("0.0001")))


def test_position_without_holdings_or_prices(user_client):
    body = user_client.get("/api/v1/position").json()
    assert body["quantity"] == "0.00000000"
    assert body["latest_price"] is None and body["unrealized_pnl_krw"] is None


def test_dashboard_counts_today_and_shows_why_trading_is_paused(user_client):
    now = timezone.now()
    make_signals(3, end=now)  # BUY, SELL, HOLD within the last minutes (today, unless run at 00:0x UTC)
    TradingSignal.objects.filter().update(created_at=now.replace(hour=0, minute=0, second=1, microsecond=0))
    make_signals(2, end=now - dt.timedelta(days=2))  # not today
    make_orders(5, end=now.replace(hour=0, minute=10), with_signals=False)  # minutes 10..6 today
    set_value("trading_paused", True)
    set_value("trading_pause_reason", "volatility 4.2% > 3%")
    body = user_client.get("/api/v1/dashboard").json()
    assert body["today"]["signals"] == {"BUY": 1, "SELL": 1, "HOLD": 1, "total": 3}
    assert body["today"]["orders"] == {
        "PENDING": 1,
        "SUBMITTED": 1,
        "FILLED": 1,
        "CANCELLED": 1,
        "FAILED": 1,
        "total": 5,
    }
    assert body["trading"] == {
        "enabled": True,
        "paused": True,
        "pause_reason": "volatility 4.2% > 3%",
        "active": False,
    }
    assert body["position"]["symbol"] == "KRW-BTC"


def test_ai_usage_sums_tokens_per_day_and_prices_them_from_config(user_client):
    set_value("ai_input_cost_krw_per_1k_tokens", "0.5")
    set_value("ai_output_cost_krw_per_1k_tokens", "4")
    today = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)
    if today > timezone.now():
        today -= dt.timedelta(days=1)
    make_signals(2, end=today)  # 1000+1001 in, 100+101 out
    make_signals(1, end=today - dt.timedelta(days=2))  # 1000 in, 100 out
    make_signals(1, end=today - dt.timedelta(days=10))  # outside 3 days
    body = user_client.get("/api/v1/ai/usage", {"days": 3}).json()
    assert [day["date"] for day in body["results"]] == [
        str((today - dt.timedelta(days=offset)).date()) for offset in (2, 1, 0)
    ]
    assert [(d["signals"], d["input_tokens"], d["output_tokens"]) for d in body["results"]] == [
        (1, 1000, 100),
        (0, 0, 0),
        (2, 2001, 201),
    ]
    assert body["results"][2]["cost_krw"] == str(
        (Decimal("2.001") * Decimal("0.5") + Decimal("0.201") * 4).quantize(Decimal("0.0001"))
    )
    assert body["totals"]["input_tokens"] == 3001
    assert Decimal(body["totals"]["cost_krw"]) == sum(Decimal(d["cost_krw"]) for d in body["results"])
