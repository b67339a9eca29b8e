"""Position math (fees in the cost basis) and exactly-once application."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading.models import Order, Position
from trading.services.position import apply_fill, apply_order_to_position, get_position

D = Decimal


def test_buy_averages_include_fees() -> None:
    position = Position(symbol="KRW-BTC")
    apply_fill(position, side="bid", volume=D("0.001"), funds=D("100000"), fee=D("50"))
    assert position.quantity == D("0.001")
    assert position.average_buy_price == D("100050000")
    apply_fill(position, side="bid", volume=D("0.001"), funds=D("120000"), fee=D("60"))
    assert position.quantity == D("0.002")
    assert position.average_buy_price == D("110055000")  # (100050 + 120060) / 0.002


def test_sell_realizes_pnl_net_of_fee_and_keeps_the_average() -> None:
    position = Position(symbol="KRW-BTC", quantity=D("0.002"), average_buy_price=D("100000000"))
    realized = apply_fill(position, side="ask", volume=D("0.001"), funds=D("110000"), fee=D("55"))
    assert realized == D("9945")
    assert position.quantity == D("0.001")
    assert position.average_buy_price == D("100000000")
    assert position.realized_pnl_krw == D("9945")
    apply_fill(position, side="ask", volume=D("0.001"), funds=D("90000"), fee=D("45"))
    assert position.quantity == 0
    assert position.average_buy_price == 0
    assert position.realized_pnl_krw == D("9945") - D("10045")


def test_selling_more_than_held_empties_the_position() -> None:
    position = Position(symbol="KRW-BTC", quantity=D("0.001"), average_buy_price=D("100000000"))
    apply_fill(position, side="ask", volume=D("0.002"), funds=D("200000"), fee=D("100"))
    assert position.quantity == 0
    assert position.realized_pnl_krw == D("200000") - D("100") - D("200000")


def test_zero_fill_changes_nothing() -> None:
    position = Position(symbol="KRW-BTC", quantity=D("0.001"), average_buy_price=D("1"))
    assert apply_fill(position, side="bid", volume=D("0"), funds=D("0"), fee=D("0")) == 0
    assert position.quantity == D("0.001")


@pytest.mark.django_db
def test_apply_order_is_idempotent_and_waits_for_a_final_state() -> None:
    order = Order.objects.create(
        market="KRW-BTC",
        side="bid",
        ord_type="price",
        status=Order.Status.SUBMITTED,
        executed_volume=D("0.001"),
        executed_funds=D("100000"),
        paid_fee=D("50"),
    )
    assert apply_order_to_position(order.pk) is False  # not final yet
    Order.objects.filter(pk=order.pk).update(status=Order.Status.FILLED)
    assert apply_order_to_position(order.pk) is True
    assert apply_order_to_position(order.pk) is False
    assert get_position("KRW-BTC").quantity == D("0.001")
