"""Reconciliation by identifier: adopt, fail, update, apply — each once."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from paper_exchange.models import PaperOrder
from tests.concurrency import run_in_threads
from tests.trading.order_support import RecordingExchange, make_signal, paper_exchange
from trading.clients.exchange.errors import OrderStateUnknownError, TransientExchangeError
from trading.models import Order, Position
from trading.services import order_execution
from trading.services.reconciliation import PENDING_GRACE, reconcile_pending_orders

pytestmark = pytest.mark.django_db
NOW = timedelta(0)


def _age(order: Order, seconds: int) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_pending_order_accepted_but_unanswered_is_adopted_and_applied() -> None:
    exchange = RecordingExchange(paper_exchange())
    exchange.fail_after["place_order"] = OrderStateUnknownError("answer lost, lookup failed")
    order = order_execution.execute_signal(make_signal("BUY"), exchange=exchange)
    assert order.status == Order.Status.PENDING and order.uuid is None
    _age(order, 120)

    summary = reconcile_pending_orders(exchange=exchange)

    order.refresh_from_db()
    remote = PaperOrder.objects.get(identifier=order.identifier)
    assert order.status == Order.Status.FILLED
    assert order.uuid == str(remote.uuid)
    assert order.executed_volume == remote.executed_volume
    assert order.position_applied
    assert Position.objects.get(symbol="KRW-BTC").quantity == remote.executed_volume
    assert summary.adopted == 1 and summary.positions_applied == 1 and summary.errors == 0

    again = reconcile_pending_orders(exchange=exchange)
    assert again.checked == 0 and again.positions_applied == 0
    assert Position.objects.get(symbol="KRW-BTC").quantity == remote.executed_volume


def test_pending_order_unknown_to_the_exchange_becomes_failed() -> None:
    exchange = paper_exchange()
    order = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"))
    _age(order, 120)

    summary = reconcile_pending_orders(exchange=exchange)

    order.refresh_from_db()
    assert order.status == Order.Status.FAILED
    assert "never reached the exchange" in order.error
    assert summary.failed_never_placed == 1
    assert PaperOrder.objects.count() == 0


def test_recent_pending_order_is_left_alone() -> None:
    exchange = RecordingExchange(paper_exchange())
    order = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"))

    summary = reconcile_pending_orders(exchange=exchange)

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert summary.still_open == 1
    assert exchange.calls == []
    assert timedelta(seconds=10) <= PENDING_GRACE


def test_submitted_order_gets_its_fills_and_position(fake_clock) -> None:
    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
    from tests.fakes.upbit_slow_fill import SlowFillUpbit
    from trading.clients.exchange.upbit import UpbitExchange
    from trading.services import config as config_service

    config_service.set_value("order_poll_timeout_s", 2)
    with SlowFillUpbit(hold_fills=True, rate_limits=None) as server:
        exchange = UpbitExchange(
            TEST_ACCESS_KEY, TEST_SECRET_KEY, server.url, sleep=fake_clock.sleep, clock=fake_clock, close_at_exit=False
        )
        order = order_execution.execute_signal(
            make_signal("BUY"), exchange=exchange, sleep=fake_clock.sleep, clock=fake_clock
        )
        assert order.status == Order.Status.SUBMITTED

        still_open = reconcile_pending_orders(exchange=exchange)
        assert still_open.still_open == 1 and still_open.positions_applied == 0

        server.release_fills()
        summary = reconcile_pending_orders(exchange=exchange)

        order.refresh_from_db()
        remote = server.orders[order.uuid]
        assert order.status == Order.Status.FILLED
        assert order.executed_volume == remote["executed_volume"] > 0
        assert order.paid_fee == remote["paid_fee"]
        assert summary.updated == 1 and summary.positions_applied == 1
        assert Position.objects.get(symbol="KRW-BTC").quantity == order.executed_volume


def test_a_lookup_error_is_counted_and_other_orders_still_reconciled() -> None:
    exchange = RecordingExchange(paper_exchange())
    first = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"))
    second = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"))
    _age(first, 300)
    _age(second, 200)
    exchange.fail["get_order"] = TransientExchangeError("timeout")

    summary = reconcile_pending_orders(exchange=exchange)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Order.Status.PENDING  # unknown: try again next time
    assert second.status == Order.Status.FAILED
    assert summary.errors == 1 and summary.failed_never_placed == 1


def test_final_order_not_yet_applied_is_applied_once() -> None:
    order = Order.objects.create(
        market="KRW-BTC",
        side="bid",
        ord_type="price",
        price=Decimal("100000"),
        status=Order.Status.CANCELLED,  # a market buy can end "cancel" with fills
        exchange_state="cancel",
        executed_volume=Decimal("0.00099"),
        executed_funds=Decimal("99000"),
        paid_fee=Decimal("49.5"),
    )

    assert reconcile_pending_orders(exchange=paper_exchange()).positions_applied == 1
    assert reconcile_pending_orders(exchange=paper_exchange()).positions_applied == 0
    position = Position.objects.get(symbol="KRW-BTC")
    assert position.quantity == Decimal("0.00099")
    order.refresh_from_db()
    assert order.position_applied


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reconcilers_apply_fills_exactly_once() -> None:
    orders = [
        Order.objects.create(
            market="KRW-BTC",
            side="bid",
            ord_type="price",
            price=Decimal("100000"),
            status=Order.Status.FILLED,
            exchange_state="done",
            executed_volume=Decimal("0.001"),
            executed_funds=Decimal("100000"),
            paid_fee=Decimal("50"),
        )
        for _ in range(5)
    ]
    barrier = threading.Barrier(4)

    def run() -> int:
        barrier.wait(timeout=5)
        return reconcile_pending_orders(exchange=paper_exchange()).positions_applied

    applied, errors = run_in_threads(run, 4)

    assert not errors, errors
    assert sum(applied) == len(orders)
    position = Position.objects.get(symbol="KRW-BTC")
    assert position.quantity == Decimal("0.005")
    assert position.average_buy_price == Decimal("100050000")
