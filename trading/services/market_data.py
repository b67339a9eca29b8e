"""Market data collection: one ticker -> one ``MarketData`` row."""

from __future__ import annotations

import structlog
from django.conf import settings
from django.db import transaction

from trading.clients.exchange.base import Exchange
from trading.models import MarketData

logger = structlog.get_logger("trading.market_data")


def collect_market_data(*, exchange: Exchange | None = None, market: str | None = None) -> MarketData | None:
    """Store the current ticker; ``None`` when the exchange still reports the sample already stored.

    The exchange is asked directly, not through the 10 s ticker cache: at a 10 s
    cadence the cache would hand back the previous sample. The row carries the
    ticker's own exchange timestamp, and a timestamp already stored is not
    inserted twice. The network call happens before (outside) the short
    transaction that writes the row.
    """
    if exchange is None:
        from trading.clients.exchange import get_exchange

        exchange = get_exchange()
    market = market or settings.TRADING_MARKET
    ticker = exchange.get_ticker(market)
    with transaction.atomic():
        if MarketData.objects.filter(symbol=ticker.market, timestamp=ticker.timestamp).exists():
            logger.info("market_data.duplicate_skipped", market=ticker.market, timestamp=ticker.timestamp.isoformat())
            return None
        row = MarketData.objects.create(
            symbol=ticker.market,
            trade_price=ticker.trade_price,
            opening_price=ticker.opening_price,
            high_price=ticker.high_price,
            low_price=ticker.low_price,
            trade_volume=ticker.acc_trade_volume_24h,
            change_rate=ticker.signed_change_rate,
            timestamp=ticker.timestamp,
        )
    logger.info("market_data.collected", market=row.symbol, trade_price=str(row.trade_price))
    return row
