"""``MarketDataSampler``: ~450 price points from the stored history, bucketed in SQL.

Three non-overlapping ranges, oldest first (seed 002 "완료된 최적화": 1,000 → 450 points):

=========  ==========  =================================  ==========
range      bucket      span                               points
=========  ==========  =================================  ==========
long       1 hour      the 336 hours before the mid range  ≤ 336
mid        15 minutes  the 24 hours before the short range ≤ 96
short      1 minute    the last 12 minutes                 ≤ 12
=========  ==========  =================================  ==========

Each point is the *average* trade price of its bucket, stamped with the
bucket's start. Buckets are ``TruncHour``/``TruncMinute`` and, for 15 minutes,
``TruncHour`` plus ``minute / 15`` (integer division of an integer cast) — plain
expressions that work on PostgreSQL and SQLite. One ``GROUP BY`` query per
range (3 queries), so memory is bounded by the number of buckets, never by the
number of rows. Empty buckets are simply absent (sparse data gives fewer points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Avg, IntegerField, Value
from django.db.models.functions import Cast, ExtractMinute, TruncHour, TruncMinute
from django.utils import timezone

from trading.clients.ai.base import PricePoint
from trading.models import MarketData

LONG_POINTS = 336
MID_POINTS = 96
SHORT_POINTS = 12
PRICE_QUANTUM = Decimal("0.01")


@dataclass(frozen=True)
class SampledRanges:
    long: list[PricePoint] = field(default_factory=list)  # hourly
    mid: list[PricePoint] = field(default_factory=list)  # 15-minute
    short: list[PricePoint] = field(default_factory=list)  # 1-minute

    @property
    def points(self) -> list[PricePoint]:
        """All points, oldest first (the ranges do not overlap)."""
        return [*self.long, *self.mid, *self.short]


def _floor(moment: datetime, minutes: int) -> datetime:
    moment = moment.replace(second=0, microsecond=0)
    return moment - timedelta(minutes=moment.minute % minutes)


class MarketDataSampler:
    """Samples the stored ``MarketData`` of one symbol at three resolutions."""

    def __init__(
        self,
        symbol: str | None = None,
        *,
        long_points: int = LONG_POINTS,
        mid_points: int = MID_POINTS,
        short_points: int = SHORT_POINTS,
    ) -> None:
        self.symbol = symbol or settings.TRADING_MARKET
        self.long_points = long_points
        self.mid_points = mid_points
        self.short_points = short_points

    def sample(self, now: datetime | None = None) -> list[PricePoint]:
        return self.sample_ranges(now).points

    def sample_ranges(self, now: datetime | None = None) -> SampledRanges:
        now = now or timezone.now()
        # Range edges are aligned to bucket edges so that no bucket straddles two ranges.
        short_end = _floor(now, 1) + timedelta(minutes=1)  # includes the current (partial) minute
        short_start = short_end - timedelta(minutes=self.short_points)
        mid_start = _floor(short_start, 15) - timedelta(minutes=15 * (self.mid_points - 1))
        long_start = _floor(mid_start, 60) - timedelta(hours=self.long_points - 1)
        return SampledRanges(
            long=self._hourly(long_start, mid_start),
            mid=self._quarter_hourly(mid_start, short_start),
            short=self._minutely(short_start, short_end),
        )

    def _rows(self, start: datetime, end: datetime):
        return MarketData.objects.filter(symbol=self.symbol, timestamp__gte=start, timestamp__lt=end).order_by()

    @staticmethod
    def _point(bucket: datetime, price: Decimal) -> PricePoint:
        return PricePoint(timestamp=bucket, price=Decimal(price).quantize(PRICE_QUANTUM))

    def _hourly(self, start: datetime, end: datetime) -> list[PricePoint]:
        rows = (
            self._rows(start, end)
            .annotate(bucket=TruncHour("timestamp"))
            .values("bucket")
            .annotate(price=Avg("trade_price"))
            .order_by("bucket")
        )
        return [self._point(row["bucket"], row["price"]) for row in rows]

    def _quarter_hourly(self, start: datetime, end: datetime) -> list[PricePoint]:
        rows = (
            self._rows(start, end)
            .annotate(
                hour=TruncHour("timestamp"),
                quarter=Cast(ExtractMinute("timestamp"), IntegerField()) / Value(15),
            )
            .values("hour", "quarter")
            .annotate(price=Avg("trade_price"))
            .order_by("hour", "quarter")
        )
        return [self._point(row["hour"] + timedelta(minutes=15 * int(row["quarter"])), row["price"]) for row in rows]

    def _minutely(self, start: datetime, end: datetime) -> list[PricePoint]:
        rows = (
            self._rows(start, end)
            .annotate(bucket=TruncMinute("timestamp"))
            .values("bucket")
            .annotate(price=Avg("trade_price"))
            .order_by("bucket")
        )
        return [self._point(row["bucket"], row["price"]) for row in rows]
