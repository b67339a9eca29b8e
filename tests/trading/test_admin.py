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
