"""MarketDataSampler: bucket counts per range, SQL averages, bounded queries, sparse data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.factories import bulk_market_data, make_market_data
from trading.services.sampling import MarketDataSampler

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 12, 7, 30, tzinfo=UTC)


def _rows(start: datetime, end: datetime, step: timedelta, price=lambda moment: Decimal("100000000")) -> None:
    moments = []
    moment = start
    while moment < end:
        moments.append(moment)
        moment += step
    bulk_market_data(((price(moment), moment) for moment in moments), batch_size=2000)


def test_full_history_gives_about_450_points_in_three_ranges(django_assert_max_num_queries) -> None:
    # 16 days of data: every minute (dense enough for every bucket, fast to insert).
    _rows(NOW - timedelta(days=16), NOW + timedelta(seconds=1), timedelta(minutes=1))
    make_market_data(Decimal("1"), NOW, symbol="KRW-ETH")  # another market never leaks in

    with django_assert_max_num_queries(3):
        ranges = MarketDataSampler("KRW-BTC").sample_ranges(NOW)

    assert len(ranges.short) == 12
    assert len(ranges.mid) == 96
    assert 335 <= len(ranges.long) <= 336
    assert 443 <= len(ranges.points) <= 444
    stamps = [point.timestamp for point in ranges.points]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # oldest first, no overlap
    assert ranges.short[-1].timestamp == datetime(2026, 11, 20, 12, 7, tzinfo=UTC)
    assert all(point.timestamp.minute % 15 == 0 for point in ranges.mid)
    assert all(point.timestamp.minute == 0 for point in ranges.long)
    assert ranges.long[0].timestamp >= NOW - timedelta(days=15, hours=1)


def test_bucket_prices_are_averages() -> None:
    # Within each 15-minute bucket the price is 100 M + minute-of-quarter * 1,000 KRW → average 107,000.
    def price(moment: datetime) -> Decimal:
        return Decimal("100000000") + Decimal(moment.minute % 15) * 1000

    _rows(NOW - timedelta(days=2), NOW, timedelta(minutes=1), price)
    ranges = MarketDataSampler("KRW-BTC").sample_ranges(NOW)

    full_quarters = ranges.mid[1:-1]
    assert full_quarters and all(point.price == Decimal("100007000.00") for point in full_quarters)
    # Hourly buckets average four identical quarters.
    assert ranges.long[-2].price == Decimal("100007000.00")
    # Minute buckets of 10 s rows: six identical samples each.
    assert ranges.short[-2].price == price(ranges.short[-2].timestamp)


def test_ten_second_rows_average_within_a_minute() -> None:
    start = NOW.replace(second=0) - timedelta(minutes=3)
    values = iter(Decimal(v) for v in [1, 2, 3, 4, 5, 6] * 4)
    _rows(start, start + timedelta(minutes=4), timedelta(seconds=10), lambda _moment: next(values))
    ranges = MarketDataSampler("KRW-BTC").sample_ranges(NOW)
    assert [point.price for point in ranges.short[-4:]] == [Decimal("3.50")] * 4


def test_sparse_or_empty_history_is_graceful() -> None:
    assert MarketDataSampler("KRW-BTC").sample(NOW) == []
    _rows(NOW - timedelta(hours=30), NOW - timedelta(hours=28), timedelta(hours=1))
    _rows(NOW - timedelta(minutes=2), NOW, timedelta(minutes=1))
    ranges = MarketDataSampler("KRW-BTC").sample_ranges(NOW)
    assert len(ranges.long) == 2 and ranges.mid == [] and len(ranges.short) == 2
