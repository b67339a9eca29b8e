"""Admin: config edits are validated by the form; exchange rows are read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from trading.models import SystemConfig

pytestmark = pytest.mark.django_db


def test_admin_refuses_a_wrong_value_with_a_clear_message(client, staff_user):
    client.force_login(staff_user)
    row = SystemConfig.objects.get(key="min_confidence")
    url = reverse("admin:trading_systemconfig_change", args=[row.pk])
    response = client.post(url, {"value": "1.7", "description": row.description})
    assert response.status_code == 200
    assert "min_confidence must be at most 1" in response.content.decode()
    row.refresh_from_db()
    assert row.value == "0.6"


def test_admin_saves_a_valid_value(client, staff_user):
    client.force_login(staff_user)
    row = SystemConfig.objects.get(key="min_confidence")
    url = reverse("admin:trading_systemconfig_change", args=[row.pk])
    response = client.post(url, {"value": "0.75", "description": row.description})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.value == "0.75"


def test_admin_cannot_add_an_unknown_key(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("admin:trading_systemconfig_add"), {"key": "typo_key", "value": "1"})
    assert response.status_code == 200
    assert not SystemConfig.objects.filter(key="typo_key").exists()


@pytest.mark.parametrize("model", ["order", "marketdata", "tradingsignal", "position"])
def test_exchange_sourced_rows_are_read_only(client, staff_user, model):
    client.force_login(staff_user)
    assert client.get(reverse(f"admin:trading_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:trading_{model}_add")).status_code == 403


def test_close_position_now_action_sells_the_position_and_reports_it(client, staff_user):
    from decimal import Decimal

    from trading.models import Order, Position
    from trading.services.order_execution import place_manual_order

    place_manual_order("buy", krw_amount=Decimal("10000"))
    position = Position.objects.get(symbol="KRW-BTC")
    held = position.quantity
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:trading_position_changelist"),
        {"action": "close_position_now", "_selected_action": [position.pk]},
        follow=True,
    )
    assert response.status_code == 200
    close = Order.objects.get(side="ask")
    assert (close.status, close.reason, close.volume, close.user) == ("FILLED", "manual", held, staff_user)
    assert f"Close order {close.identifier}: FILLED" in response.content.decode()
    position.refresh_from_db()
    assert position.quantity == 0


def test_close_position_now_without_a_position_shows_the_refusal(client, staff_user):
    from trading.models import Order
    from trading.services.position import get_position

    position = get_position("KRW-BTC")
    client.force_login(staff_user)
    response = client.post(
        reverse("admin:trading_position_changelist"),
        {"action": "close_position_now", "_selected_action": [position.pk]},
        follow=True,
    )
    assert "Close refused, nothing placed: close (manual) refused: no position to sell" in response.content.decode()
    assert Order.objects.count() == 0
