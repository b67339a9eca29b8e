"""Risk checks that decide whether (and how much) to trade, before any order row exists.

Config comes from the cached config service; balances and the ticker from the
10 s exchange cache (ticker and order chance: fees, minimum, free
balances). The position is fetched once by the caller and passed in
(seed 002 §2.2). A refused trade is a ``RiskDecision`` with ``allowed=False``
and a reason an operator can read — never an exception.

Rules:

* ``trading_enabled`` is the master switch: false → no order at all (also no
  stop-loss/take-profit close).
* ``trading_paused`` (the volatility guard) blocks signal trades, but not a
  protective stop-loss/take-profit close: that is the moment it is needed.
* A signal below ``min_confidence`` is not traded.
* BUY spends ``min(order_amount_krw, max_position_krw - position value, free KRW / (1 + fee))``
  rounded down to whole KRW; below the exchange minimum (5,000 KRW) → refused.
* SELL / close sells the whole recorded position (limited by the free BTC the
  exchange reports); a value below the minimum → refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import structlog
from django.conf import settings

from trading.clients.exchange.base import Exchange
from trading.models import Order, Position, TradingSignal
from trading.services import config as config_service

logger = structlog.get_logger(__name__)

ZERO = Decimal("0")
MIN_ORDER_KRW = Decimal("5000")  # Upbit KRW market minimum order value
VOLUME_QUANTUM = Decimal("0.00000001")

SIGNAL_KEYS = ("trading_enabled", "trading_paused", "trading_pause_reason", "min_confidence")
BUY_KEYS = ("max_position_krw", "order_amount_krw")


@dataclass(frozen=True)
class RiskDecision:
    allowed: bool
    reason: str
    side: str = ""
    ord_type: str = ""
    price: Decimal | None = None  # KRW amount of a market buy
    volume: Decimal | None = None  # BTC volume of a market sell

    @classmethod
    def refuse(cls, reason: str) -> RiskDecision:
        return cls(allowed=False, reason=reason)

    @classmethod
    def market_buy(cls, amount: Decimal, reason: str) -> RiskDecision:
        """Allowed: a market buy (``ord_type=price``) spending ``amount`` KRW."""
        return cls(allowed=True, reason=reason, side=Order.Side.BID, ord_type=Order.OrderType.PRICE, price=amount)

    @classmethod
    def market_sell(cls, volume: Decimal, reason: str) -> RiskDecision:
        """Allowed: a market sell (``ord_type=market``) of ``volume``."""
        return cls(allowed=True, reason=reason, side=Order.Side.ASK, ord_type=Order.OrderType.MARKET, volume=volume)


@dataclass(frozen=True)
class MarketLimits:
    fee_rate: Decimal
    min_total: Decimal
    free_krw: Decimal
    free_btc: Decimal
    price: Decimal


def market_limits(market: str, exchange: Exchange | None = None) -> MarketLimits:
    """Fees, minimum, free balances and price, from the 10 s exchange cache (network on a miss)."""
    from trading.services import exchange_cache
    from trading.services.order_execution import release_connection

    release_connection()  # a cache miss calls the exchange: no connection held meanwhile

    chance = exchange_cache.get_order_chance(market, exchange=exchange)
    return MarketLimits(
        fee_rate=max(chance.bid_fee, chance.ask_fee),
        min_total=max(chance.min_total, MIN_ORDER_KRW),
        free_krw=chance.bid_balance,
        free_btc=chance.ask_balance,
        price=exchange_cache.get_ticker(market, exchange=exchange).trade_price,
    )


def check_signal(signal: TradingSignal, position: Position, exchange: Exchange | None = None) -> RiskDecision:
    """May ``signal`` be traded, and with which order?"""
    values = config_service.get_many(SIGNAL_KEYS)
    if signal.signal_type == TradingSignal.SignalType.HOLD:
        return RiskDecision.refuse("HOLD signal: nothing to do")
    if not values["trading_enabled"]:
        return RiskDecision.refuse("trading is disabled (trading_enabled=false)")
    if values["trading_paused"]:
        detail = values["trading_pause_reason"] or "no reason given"
        return RiskDecision.refuse(f"trading is paused: {detail}")
    if signal.confidence < values["min_confidence"]:
        return RiskDecision.refuse(f"confidence {signal.confidence} is below min_confidence {values['min_confidence']}")
    market = position.symbol or settings.TRADING_MARKET
    if signal.signal_type == TradingSignal.SignalType.BUY:
        return _buy_decision(position, market, exchange)
    return _sell_decision(position, market, "SELL signal", exchange)


def _buy_decision(position: Position, market: str, exchange: Exchange | None) -> RiskDecision:
    values = config_service.get_many(BUY_KEYS)
    limits = market_limits(market, exchange)
    position_value = position.quantity * limits.price
    room = values["max_position_krw"] - position_value
    affordable = limits.free_krw / (Decimal("1") + limits.fee_rate)
    amount = min(values["order_amount_krw"], room, affordable).quantize(Decimal("1"), rounding=ROUND_DOWN)
    if amount < limits.min_total:
        if room < limits.min_total:
            why = f"position value {position_value:.0f} KRW leaves less than the minimum under max_position_krw"
        elif affordable < limits.min_total:
            why = "free KRW balance is below the minimum order"
        else:
            why = "order amount is below the minimum order"
        return RiskDecision.refuse(f"BUY refused: {why} ({limits.min_total} KRW)")
    return RiskDecision.market_buy(amount, f"BUY {amount} KRW at about {limits.price}")


def _sell_decision(position: Position, market: str, what: str, exchange: Exchange | None) -> RiskDecision:
    if position.quantity <= ZERO:
        return RiskDecision.refuse(f"{what} refused: no position to sell")
    limits = market_limits(market, exchange)
    volume = min(position.quantity, limits.free_btc).quantize(VOLUME_QUANTUM, rounding=ROUND_DOWN)
    if volume <= ZERO:
        return RiskDecision.refuse(f"{what} refused: the exchange reports no free {market.split('-', 1)[1]}")
    value = volume * limits.price
    if value < limits.min_total:
        return RiskDecision.refuse(f"{what} refused: position value {value:.0f} KRW is below the minimum order")
    return RiskDecision.market_sell(volume, f"{what}: sell {volume} at about {limits.price}")


def check_close(position: Position, reason: str, exchange: Exchange | None = None) -> RiskDecision:
    """May the position be closed for ``reason`` (stop-loss/take-profit)?"""
    if reason not in (Order.Reason.STOP_LOSS, Order.Reason.TAKE_PROFIT, Order.Reason.MANUAL):
        return RiskDecision.refuse(f"unknown close reason {reason!r}")
    if not config_service.get_value("trading_enabled"):
        return RiskDecision.refuse("trading is disabled (trading_enabled=false)")
    return _sell_decision(position, position.symbol or settings.TRADING_MARKET, f"close ({reason})", exchange)
