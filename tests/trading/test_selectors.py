"""Read-side selectors: keyset pages, SQL window statistics, dashboard figures, config entries."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.trading.api.rows import make_market_rows, make_orders, make_signals
from trading import selectors
from trading.models import MarketData, SystemConfig

pytestmark = pytest.mark.django_db


def test_market_history_keyset_pages_are_disjoint_and_complete():
    rows = make_market_rows(12)
    since = timezone.now() - dt.timedelta(hours=1)
    first = selectors.market_history("KRW-BTC", since=since, limit=5)
    second = selectors.market_history("KRW-BTC", since=since, cursor=first.next_cursor, limit=5)
    third = selectors.market_history("KRW-BTC", since=since, cursor=second.next_cursor, limit=5)
    assert third.next_cursor is None
    ids = [row["id"] for page in (first, second, third) for row in page.rows]
    assert ids == [row.id for row in reversed(rows)]


def test_market_history_queryset_holds_one_extra_row_for_the_next_page_check():
    make_market_rows(3)
    queryset = selectors.market_history_queryset("KRW-BTC", since=timezone.now() - dt.timedelta(hours=1), limit=2)
    assert len(list(queryset)) == 3


def test_market_stats_ignores_other_symbols_and_rows_outside_the_window():
    now = timezone.now()
    make_market_rows(4, end=now - dt.timedelta(seconds=1))  # 100..103
    make_market_rows(3, end=now - dt.timedelta(days=2))
    make_market_rows(3, symbol="KRW-ETH", end=now - dt.timedelta(seconds=1))
    stats = selectors.market_stats("KRW-BTC", since=now - dt.timedelta(hours=1), until=now)
    assert stats["samples"] == 4
    assert (stats["first"], stats["last"], stats["high"], stats["low"]) == (100, 103, 103, 100)
    assert stats["average"] == Decimal("101.50000000")
    assert stats["change_pct"] == Decimal("3.0000")


def test_market_stats_of_an_empty_window():
    now = timezone.now()
    stats = selectors.market_stats("KRW-BTC", since=now - dt.timedelta(hours=1), until=now)
    assert stats["samples"] == 0 and stats["average"] is None


def test_signal_and_order_pages():
    make_signals(3)
    make_orders(3, with_signals=False)
    assert len(selectors.signal_page(limit=2).rows) == 2
    page = selectors.order_page(limit=5, status="FILLED")
    assert [order.status for order in page.rows] == ["FILLED"]


def test_position_summary_without_a_position_is_zero():
    summary = selectors.position_summary("KRW-BTC")
    assert summary["quantity"] == 0 and summary["unrealized_pnl_krw"] is None


def test_start_of_today_is_utc_midnight():
    moment = dt.datetime(2026, 5, 5, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert selectors.start_of_today(moment) == dt.datetime(2026, 5, 5, 0, 0, tzinfo=dt.UTC)


def test_ai_usage_days_are_consecutive_and_include_today():
    now = timezone.now()
    usage = selectors.ai_usage_by_day(5, now=now)
    assert len(usage["results"]) == 5
    assert usage["results"][-1]["date"] == now.date()
    assert usage["totals"]["cost_krw"] == 0


def test_config_entries_fall_back_to_schema_defaults_for_missing_rows():
    SystemConfig.objects.filter(key="stop_loss_pct").delete()
    entries = {entry["key"]: entry for entry in selectors.config_entries()}
    assert entries["stop_loss_pct"]["value"] == Decimal("5")
    assert entries["stop_loss_pct"]["updated_at"] is None
    assert selectors.config_entry("no_such_key") is None


@pytest.mark.parametrize("use_python", [False, True])
def test_seed_market_data_writes_evenly_spaced_samples(use_python):
    arguments = ["seed_market_data", "--days", "1", "--interval", "60", "--clear"]
    if use_python:
        arguments.append("--python")
    output = io.StringIO()
    call_command(*arguments, stdout=output)
    timestamps = list(MarketData.objects.order_by("timestamp").values_list("timestamp", flat=True))
    assert len(timestamps) == 1440
    assert {b - a for a, b in itertools.pairwise(timestamps)} == {dt.timedelta(seconds=60)}
    prices = MarketData.objects.values_list("trade_price", flat=True)
    assert all(Decimal("80000000") < price < Decimal("100000000") for price in prices)
    assert "Inserted 1440 KRW-BTC rows" in output.getvalue()


def test_seed_market_data_rejects_bad_arguments():
    with pytest.raises(CommandError):
        call_command("seed_market_data", "--days", "400", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("seed_market_data", "--base-price", "-5", stdout=io.StringIO())
