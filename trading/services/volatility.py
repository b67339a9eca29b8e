"""Volatility guard and the stop-loss / take-profit trigger (both on the 30 s cadence).

Volatility is the price range over the window relative to its low:
``(max(trade_price) - min(trade_price)) / min(trade_price) * 100``. MAX, MIN and
COUNT come from one aggregate query over the ``(symbol, timestamp)`` index; the
last division is done in ``Decimal`` (SQLite would do it in floating point).
A range is what an operator reads as "the price moved 3 % in 10 minutes",
unlike a standard deviation of returns, whose size depends on the sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db.models import Count, Max, Min
from django.utils import timezone

from trading.models import MarketData, Position
from trading.services import config

logger = structlog.get_logger("trading.volatility")

#: Prefix of ``trading_pause_reason`` when the guard paused trading; only such a pause is auto-resumed.
PAUSE_REASON_PREFIX = "volatility:"
#: Latest stored price older than this is not trusted for stop-loss; the (10 s cached) ticker is used.
PRICE_MAX_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class VolatilityCheck:
    volatility_pct: Decimal | None
    threshold_pct: Decimal
    samples: int
    action: str  # none | paused | resumed | insufficient_data
    exit_reason: str | None = None  # stop_loss | take_profit when a close was requested


def volatility_pct(market: str, window_minutes: int, *, now: datetime | None = None) -> tuple[Decimal | None, int]:
    """The price range over the last ``window_minutes`` in percent, and the number of samples."""
    now = now or timezone.now()
    aggregate = MarketData.objects.filter(
        symbol=market, timestamp__gte=now - timedelta(minutes=window_minutes), timestamp__lte=now
    ).aggregate(high=Max("trade_price"), low=Min("trade_price"), samples=Count("id"))
    samples = aggregate["samples"]
    high, low = aggregate["high"], aggregate["low"]
    if samples < 2 or not low or low <= 0:
        return None, samples
    return (Decimal(high) - Decimal(low)) / Decimal(low) * 100, samples


def _notify(text: str, **fields: object) -> None:
    try:
        from trading.clients.slack import notify
    except ImportError:  # pragma: no cover - until the Slack client lands
        logger.warning("slack.unavailable", text=text)
        return
    notify(text, **fields)


def check_volatility(*, market: str | None = None, now: datetime | None = None) -> VolatilityCheck:
    """Pause trading on a volatility spike (notifying once), resume if allowed, then check exits."""
    market = market or settings.TRADING_MARKET
    now = now or timezone.now()
    threshold = Decimal(config.get_value("volatility_threshold_pct"))
    window = int(config.get_value("volatility_window_minutes"))
    pct, samples = volatility_pct(market, window, now=now)
    action = "insufficient_data" if pct is None else "none"
    if pct is not None:
        paused = bool(config.get_value("trading_paused"))
        reason = str(config.get_value("trading_pause_reason") or "")
        shown = f"{pct.quantize(Decimal('0.01'))}%"
        if pct > threshold and not paused:
            config.set_value("trading_paused", True)
            config.set_value(
                "trading_pause_reason", f"{PAUSE_REASON_PREFIX} {shown} over {window} min exceeds {threshold}%"
            )
            action = "paused"
            logger.warning("volatility.paused", volatility_pct=str(pct), threshold_pct=str(threshold))
            _notify(
                f"Trading paused: {market} moved {shown} in {window} min (threshold {threshold}%).",
                market=market,
                volatility_pct=shown,
                threshold_pct=f"{threshold}%",
            )
        elif (
            pct <= threshold
            and paused
            and reason.startswith(PAUSE_REASON_PREFIX)
            and config.get_value("volatility_auto_resume")
        ):
            config.set_value("trading_paused", False)
            config.set_value("trading_pause_reason", "")
            action = "resumed"
            logger.info("volatility.resumed", volatility_pct=str(pct), threshold_pct=str(threshold))
            _notify(f"Trading resumed: {market} volatility back to {shown} (threshold {threshold}%).", market=market)
    exit_reason = check_exit_thresholds(market=market, now=now)
    return VolatilityCheck(
        volatility_pct=pct, threshold_pct=threshold, samples=samples, action=action, exit_reason=exit_reason
    )


def latest_price(market: str, *, now: datetime | None = None) -> Decimal:
    now = now or timezone.now()
    row = MarketData.objects.filter(symbol=market).order_by("-timestamp").values("trade_price", "timestamp").first()
    if row is not None and row["timestamp"] >= now - PRICE_MAX_AGE:
        return row["trade_price"]
    from trading.services.exchange_cache import get_ticker

    return get_ticker(market).trade_price


def exit_reason_for(position: Position, price: Decimal) -> str | None:
    """``stop_loss`` / ``take_profit`` when ``price`` crosses the configured thresholds for ``position``."""
    if position.quantity <= 0 or position.average_buy_price <= 0:
        return None
    stop_loss = Decimal(config.get_value("stop_loss_pct"))
    take_profit = Decimal(config.get_value("take_profit_pct"))
    if price <= position.average_buy_price * (1 - stop_loss / 100):
        return "stop_loss"
    if price >= position.average_buy_price * (1 + take_profit / 100):
        return "take_profit"
    return None


def check_exit_thresholds(*, market: str | None = None, now: datetime | None = None) -> str | None:
    """Ask order execution to close the position when a stop-loss or take-profit is crossed.

    ``close_position`` is idempotent against a close order already open, so a
    trigger on every 30 s check while the close is in flight places nothing twice.
    """
    market = market or settings.TRADING_MARKET
    position = Position.objects.filter(symbol=market, quantity__gt=0).first()
    if position is None:
        return None
    price = latest_price(market, now=now)
    reason = exit_reason_for(position, price)
    if reason is None:
        return None
    logger.warning(
        "position.exit_triggered",
        reason=reason,
        price=str(price),
        average_buy_price=str(position.average_buy_price),
        quantity=str(position.quantity),
    )
    from trading.services.order_execution import close_position

    close_position(reason=reason)
    return reason
