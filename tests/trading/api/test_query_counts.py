"""Every list endpoint runs a constant, small number of queries: the same for 5 rows as for 50 (no N+1)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.trading.api.rows import make_market_rows, make_orders, make_signals
from trading import selectors

pytestmark = pytest.mark.django_db

ROW_COUNTS = [5, 50]


@pytest.mark.parametrize("rows", ROW_COUNTS)
@pytest.mark.parametrize(
    ("url", "make_rows"), [("/api/v1/market/history", make_market_rows), ("/api/v1/signals", make_signals)]
)
def test_history_and_signal_list_are_one_query(user_client, django_assert_num_queries, rows, url, make_rows):
    make_rows(rows)
    with django_assert_num_queries(1):
        response = user_client.get(url, {"limit": 100})
    assert response.status_code == 200
    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("rows", ROW_COUNTS)
def test_order_list_with_signal_summaries_is_one_query(user_client, django_assert_num_queries, rows):
    make_orders(rows)
    with django_assert_num_queries(1):
        response = user_client.get("/api/v1/orders", {"limit": 100})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == rows
    assert all(order["signal"]["signal_type"] in {"BUY", "SELL", "HOLD"} for order in results)


@pytest.mark.parametrize("rows", ROW_COUNTS)
def test_ai_usage_is_one_query_after_the_cost_rates(user_client, django_assert_num_queries, monkeypatch, rows):
    # The two cost rates come from the config service (cached; its own query count is its business).
    monkeypatch.setattr(selectors, "ai_cost_rates", lambda: (Decimal("1"), Decimal("2")))
    make_signals(rows)
    with django_assert_num_queries(1):
        response = user_client.get("/api/v1/ai/usage", {"days": 90})
    assert response.status_code == 200
    assert response.json()["totals"]["signals"] == rows


@pytest.mark.parametrize("extra_rows", [False, True])
def test_config_list_is_one_query(user_client, django_assert_num_queries, extra_rows):
    from trading.services.config import set_value

    if extra_rows:
        set_value("stop_loss_pct", "7")
    with django_assert_num_queries(1):
        response = user_client.get("/api/v1/config")
    assert response.status_code == 200
    assert {entry["key"] for entry in response.json()} >= {"trading_enabled", "stop_loss_pct"}
