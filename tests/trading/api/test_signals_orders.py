"""Signals and orders: filters, keyset pages, details with token usage and signal summary."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trading.api.rows import make_orders, make_signals

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_signal_list_filters_by_type_and_date_range(user_client):
    signals = make_signals(9, end=T0)  # T0, T0-1min, ... T0-8min; types BUY, SELL, HOLD repeating
    body = user_client.get(
        "/api/v1/signals",
        {"signal_type": "BUY", "since": "2026-03-01T11:54:00Z", "until": "2026-03-01T12:00:00Z"},
    ).json()
    expected = [s.id for s in signals if s.signal_type == "BUY" and T0 - dt.timedelta(minutes=6) <= s.created_at < T0]
    assert [row["id"] for row in body["results"]] == expected
    assert expected  # the filter is not vacuous


def test_signal_pages_cover_every_signal_once(user_client):
    signals = make_signals(7, end=T0)
    first = user_client.get("/api/v1/signals", {"limit": 4}).json()
    second = user_client.get("/api/v1/signals", {"limit": 4, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    assert [r["id"] for r in first["results"] + second["results"]] == [s.id for s in signals]


def test_signal_detail_has_token_usage(user_client):
    signal = make_signals(1, end=T0)[0]
    body = user_client.get(f"/api/v1/signals/{signal.id}").json()
    assert body == {
        "id": signal.id,
        "signal_type": signal.signal_type,
        "confidence": "0.7500",
        "reasoning": "reason 0",
        "provider": "rule_based",
        "model_name": "rules-v1",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 20,
        "market_data_id": None,
        "created_at": "2026-03-01T12:00:00Z",
    }


def test_order_list_filters_by_status_and_date(user_client):
    orders = make_orders(10, end=T0)
    body = user_client.get("/api/v1/orders", {"status": "FILLED", "until": "2026-03-01T12:00:00Z"}).json()
    expected = [o.id for o in orders if o.status == "FILLED" and o.created_at < T0]
    assert [row["id"] for row in body["results"]] == expected
    assert expected


def test_order_pages_cover_every_order_once(user_client):
    orders = make_orders(5, end=T0)
    first = user_client.get("/api/v1/orders", {"limit": 2}).json()
    second = user_client.get("/api/v1/orders", {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = user_client.get("/api/v1/orders", {"limit": 2, "cursor": second["next_cursor"]}).json()
    assert third["next_cursor"] is None
    ids = [r["id"] for page in (first, second, third) for r in page["results"]]
    assert ids == [o.id for o in orders]


def test_order_detail_has_signal_summary_in_one_query(user_client, django_assert_num_queries):
    order = make_orders(1, end=T0)[0]
    with django_assert_num_queries(1):
        body = user_client.get(f"/api/v1/orders/{order.id}").json()
    assert body["identifier"] == order.identifier
    assert body["average_price"] == "90000000.00000000"
    assert body["signal"] == {
        "id": order.signal_id,
        "signal_type": order.signal.signal_type,
        "confidence": "0.7500",
        "provider": "rule_based",
        "created_at": "2026-03-01T12:00:00Z",
    }


def test_order_without_signal_has_null_summary(user_client):
    order = make_orders(1, end=T0, with_signals=False)[0]
    assert user_client.get(f"/api/v1/orders/{order.id}").json()["signal"] is None


def test_fast_order_rendering_equals_the_documented_serializer(user_client):
    from decimal import Decimal

    from trading.api.serializers import OrderSerializer, order_representation
    from trading.models import Order

    orders = make_orders(3, end=T0)
    Order.objects.filter(pk=orders[0].pk).update(
        uuid="abc", volume=Decimal("0.5"), executed_volume=Decimal("0"), submitted_at=T0, error="x"
    )
    make_orders(1, end=T0, with_signals=False)
    for order in Order.objects.select_related("signal"):
        assert order_representation(order) == OrderSerializer(order).data
    listed = user_client.get("/api/v1/orders").json()["results"]
    assert listed == [
        OrderSerializer(o).data for o in Order.objects.select_related("signal").order_by("-created_at", "-id")
    ]
