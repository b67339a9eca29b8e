"""Market endpoints: latest ticker, keyset-paginated history, window stats aggregated in SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import make_market_data
from tests.trading.api.rows import make_market_rows
from trading.models import MarketData

pytestmark = pytest.mark.django_db


def test_latest_ticker_is_the_newest_row(user_client):
    rows = make_market_rows(3)
    make_market_rows(1, symbol="KRW-ETH")  # another market never leaks in
    body = user_client.get("/api/v1/market/latest").json()
    assert body["trade_price"] == "102.00000000"
    assert body["timestamp"] == rows[-1].timestamp.isoformat().replace("+00:00", "Z")
    assert body["symbol"] == "KRW-BTC"


def test_history_walks_every_row_once_newest_first_across_pages(user_client):
    rows = make_market_rows(25)
    # Two rows sharing the boundary instant must both appear exactly once.
    twin = make_market_data(
        Decimal("999"),
        rows[-10].timestamp,
        opening_price=Decimal("1"),
        high_price=Decimal("1"),
        low_price=Decimal("1"),
    )
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 10, "hours": 1}
        if cursor:
            params["cursor"] = cursor
        body = user_client.get("/api/v1/market/history", params).json()
        seen += [row["id"] for row in body["results"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted([row.id for row in rows] + [twin.id])
    assert len(seen) == len(set(seen))
    times = [MarketData.objects.get(pk=pk).timestamp for pk in seen]
    assert times == sorted(times, reverse=True)


def test_history_window_excludes_older_rows_and_decimals_are_strings(user_client):
    make_market_rows(3, every=dt.timedelta(hours=2))  # now-4h, now-2h, now
    body = user_client.get("/api/v1/market/history", {"hours": 3}).json()
    assert [row["trade_price"] for row in body["results"]] == ["102.00000000", "101.00000000"]
    assert body["next_cursor"] is None
    assert body["hours"] == 3


def test_stats_of_an_empty_window_are_nulls(user_client):
    body = user_client.get("/api/v1/market/stats", {"hours": 1}).json()
    assert body["samples"] == 0
    assert body["high"] is None and body["change_pct"] is None


@pytest.mark.postgres
def test_stats_equal_a_python_computation_over_the_same_rows(user_client):
    end = timezone.now() - dt.timedelta(seconds=5)
    prices = [Decimal(p) for p in ("100.5", "103.25", "99.75", "101", "104.125", "98", "102.5")]
    for index, price in enumerate(prices):
        make_market_data(price, end - dt.timedelta(minutes=10 * (len(prices) - 1 - index)))
    make_market_rows(5, end=end - dt.timedelta(hours=3))  # outside a 2-hour window
    make_market_rows(5, symbol="KRW-ETH")  # another market

    body = user_client.get("/api/v1/market/stats", {"hours": 2}).json()

    window = list(
        MarketData.objects.filter(symbol="KRW-BTC", timestamp__gte=end - dt.timedelta(hours=2)).order_by("timestamp")
    )
    window_prices = [row.trade_price for row in window]
    assert window_prices == prices
    expected_average = (sum(window_prices) / len(window_prices)).quantize(Decimal("0.00000001"))
    expected_change = ((window_prices[-1] - window_prices[0]) / window_prices[0] * 100).quantize(Decimal("0.0001"))
    assert body["samples"] == len(window_prices)
    assert Decimal(body["high"]) == max(window_prices)
    assert Decimal(body["low"]) == min(window_prices)
    assert Decimal(body["first"]) == window_prices[0]
    assert Decimal(body["last"]) == window_prices[-1]
    assert Decimal(body["average"]) == expected_average
    assert Decimal(body["change_pct"]) == expected_change
