"""On a month of 10 s data the history and stats queries use the market-data indexes (seed SC-003)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from trading import selectors
from trading.models import MarketData

INDEX_SCANS = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


def uses_market_data_index(plan: str) -> bool:
    return (
        any(scan in line and "idx_market_data_" in line for line in plan.splitlines() for scan in INDEX_SCANS)
        and "Seq Scan" not in plan
    )


@pytest.fixture
def month_of_market_data(db):
    call_command("seed_market_data", "--days", "31", "--interval", "10", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE trading_marketdata")
    return MarketData.objects.count()


@pytest.mark.postgres
@pytest.mark.slow
def test_history_and_stats_use_indexes_on_a_month_of_data(month_of_market_data):
    assert month_of_market_data == 31 * 8640  # 267,840 rows
    now = timezone.now()
    since = now - dt.timedelta(hours=24)

    first_page = selectors.market_history_queryset("KRW-BTC", since=since, limit=100)
    plan = first_page.explain()
    assert uses_market_data_index(plan), plan

    page = selectors.market_history("KRW-BTC", since=since, limit=100)
    assert len(page.rows) == 100 and page.next_cursor is not None
    next_page = selectors.market_history_queryset("KRW-BTC", since=since, cursor=page.next_cursor, limit=100)
    plan = next_page.explain()
    assert uses_market_data_index(plan), plan

    stats = selectors.market_stats_queryset("KRW-BTC", since=since, until=now)
    plan = stats.explain()
    assert uses_market_data_index(plan), plan
    # first/last are index walks run once (InitPlans), not once per row.
    assert plan.count("InitPlan") == 2 and "SubPlan" not in plan, plan
