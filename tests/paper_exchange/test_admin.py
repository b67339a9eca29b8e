"""The paper books are visible in admin and cannot be edited there."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paper_exchange.models import PaperOrder
from paper_exchange.price_feed import FixedPriceFeed
from trading.clients.exchange.paper import PaperExchange

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["paperaccount", "paperbalance", "paperorder", "paperidentifier"])
def test_changelists_render_read_only(client, staff_user, model):
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("100000000")))
    exchange.place_order(market="KRW-BTC", side="bid", ord_type="price", identifier="admin-1", price=Decimal(10000))
    client.force_login(staff_user)
    response = client.get(f"/admin/paper_exchange/{model}/")
    assert response.status_code == 200
    assert b"admin-1" in response.content or model in ("paperaccount", "paperbalance")
    assert client.get(f"/admin/paper_exchange/{model}/add/").status_code == 403


def test_an_order_cannot_be_changed_in_admin(client, staff_user):
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("100000000")))
    placed = exchange.place_order(
        market="KRW-BTC", side="bid", ord_type="price", identifier="admin-2", price=Decimal(10000)
    )
    order = PaperOrder.objects.get(uuid=placed.uuid)
    client.force_login(staff_user)
    response = client.post(f"/admin/paper_exchange/paperorder/{order.pk}/change/", {"state": "cancel"})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.state == "done"
