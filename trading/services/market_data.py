"""Market data collection: one ticker -> one ``MarketData`` row; a candle backfill for a fresh database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import IntegerField, Value
from django.db.models.functions import Cast, ExtractMinute, TruncHour, TruncMinute
from django.utils import timezone

from trading.clients.exchange.base import Candle, Exchange
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


# ---------------------------------------------------------------- history backfill

BACKFILL_MAX_DAYS = 31
BACKFILL_MAX_ROWS = 1200
CANDLES_PER_REQUEST = 200
MID_RANGE = timedelta(hours=24)
SHORT_RANGE = timedelta(hours=1)
RATE_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True)
class BackfillRange:
    """``count`` candles of ``unit`` minutes ending (exclusive) at ``end``."""

    unit: int
    start: datetime
    end: datetime

    @property
    def width(self) -> timedelta:
        return timedelta(minutes=self.unit)

    @property
    def count(self) -> int:
        return int((self.end - self.start) / self.width)


def _floor(moment: datetime, minutes: int) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % minutes)


def backfill_ranges(now: datetime, days: int) -> list[BackfillRange]:
    """Three non-overlapping ranges of complete candles, oldest first, shaped like the sampler's.

    hourly: ``days`` days before the mid range (the sampler's 336 hours for 14 days);
    15-minute: the 24 hours before the short range; 1-minute: the last hour or so, up to
    the current (forming, excluded) minute.
    """
    short_end = _floor(now, 1)
    short_start = _floor(now, 15) - SHORT_RANGE
    mid_start = _floor(short_start - MID_RANGE, 60)
    long_start = mid_start - timedelta(days=days)
    return [
        BackfillRange(60, long_start, mid_start),
        BackfillRange(15, mid_start, short_start),
        BackfillRange(1, short_start, short_end),
    ]


def _covered_starts(symbol: str, window: BackfillRange) -> set[datetime]:
    """Starts of the candle buckets of ``window`` that already hold a stored row (one GROUP BY query)."""
    rows = MarketData.objects.filter(symbol=symbol, timestamp__gte=window.start, timestamp__lt=window.end).order_by()
    if window.unit == 60:
        return set(rows.annotate(bucket=TruncHour("timestamp")).values_list("bucket", flat=True).distinct())
    if window.unit == 1:
        return set(rows.annotate(bucket=TruncMinute("timestamp")).values_list("bucket", flat=True).distinct())
    quarters = (
        rows.annotate(hour=TruncHour("timestamp"), quarter=Cast(ExtractMinute("timestamp"), IntegerField()) / Value(15))
        .values_list("hour", "quarter")
        .distinct()
    )
    return {hour + timedelta(minutes=15 * int(quarter)) for hour, quarter in quarters}


def _fetch_candles(exchange: Exchange, market: str, window: BackfillRange) -> list[Candle]:
    """The window's candles, paged backwards by 200 with ``to``; only candles inside the window are kept."""
    candles: dict[datetime, Candle] = {}
    cursor = window.end
    remaining = window.count
    while remaining > 0:
        page = exchange.get_minute_candles(market, window.unit, min(CANDLES_PER_REQUEST, remaining), cursor)
        inside = [c for c in page if window.start <= c.timestamp < window.end and c.timestamp not in candles]
        if not inside:
            break  # the exchange has no older history
        for candle in inside:
            candles[candle.timestamp] = candle
        remaining -= len(inside)
        cursor = min(candle.timestamp for candle in inside)
    return sorted(candles.values(), key=lambda candle: candle.timestamp)


def backfill_market_data(
    *,
    market: str | None = None,
    exchange: Exchange | None = None,
    days: int = 14,
    now: datetime | None = None,
    max_rows: int = BACKFILL_MAX_ROWS,
) -> int:
    """Fill the history the sampler needs from exchange candles; returns the number of rows inserted.

    Why: on a fresh database the first signal would see no history (the sampler
    looks back ``days`` days at hourly resolution, then 24 h at 15 minutes,
    then the last minutes). Backfilled rows are candle *closes*, not 10 s
    tickers: ``timestamp`` is the candle's start, ``trade_price`` its close,
    opening/high/low its own, ``trade_volume`` the candle's volume (not a 24 h
    total) and ``change_rate`` the change vs the previous candle's close (0 for
    the first). A candle whose bucket already holds a row (a ticker or an
    earlier backfill) is skipped, so a second call inserts nothing and ranges
    already complete are not even fetched. All exchange calls happen first,
    with no DB connection held; the rows are written afterwards in one short
    transaction. At most ``max_rows`` rows (the newest) are written.
    """
    if not 1 <= days <= BACKFILL_MAX_DAYS:
        raise ValueError(f"days must be 1 to {BACKFILL_MAX_DAYS}, not {days}")
    from trading.services.order_execution import release_connection

    market = market or settings.TRADING_MARKET
    windows = backfill_ranges(now or timezone.now(), days)
    missing = [window for window in windows if len(_covered_starts(market, window)) < window.count]
    if not missing:
        logger.info("market_data.backfill_not_needed", market=market)
        return 0
    if exchange is None:
        from trading.clients.exchange import get_exchange

        exchange = get_exchange()
    release_connection()  # network I/O next: no connection checked out meanwhile
    fetched = {window: _fetch_candles(exchange, market, window) for window in missing}
    with transaction.atomic():
        rows: list[MarketData] = []
        for window, candles in fetched.items():
            covered = _covered_starts(market, window)
            rows.extend(_row(market, candle) for candle in candles if candle.timestamp not in covered)
        rows.sort(key=lambda row: row.timestamp)
        rows = rows[-max_rows:] if max_rows > 0 else []
        _set_change_rates(rows)
        MarketData.objects.bulk_create(rows, batch_size=500)
    logger.info(
        "market_data.backfilled",
        market=market,
        rows=len(rows),
        first=rows[0].timestamp.isoformat() if rows else None,
        last=rows[-1].timestamp.isoformat() if rows else None,
    )
    return len(rows)


def _row(market: str, candle: Candle) -> MarketData:
    return MarketData(
        symbol=market,
        trade_price=candle.trade_price,
        opening_price=candle.opening_price,
        high_price=candle.high_price,
        low_price=candle.low_price,
        trade_volume=candle.volume.quantize(RATE_QUANTUM),
        change_rate=Decimal(0),
        timestamp=candle.timestamp,
    )


def _set_change_rates(rows: list[MarketData]) -> None:
    """Each row's change vs the previous row's close (rows oldest first; the first stays 0)."""
    for previous, row in pairwise(rows):
        if previous.trade_price:
            row.change_rate = ((row.trade_price - previous.trade_price) / previous.trade_price).quantize(RATE_QUANTUM)
