"""Order execution: TX1 / exchange / TX2 / TX3 with no connection held across the network, one order per signal."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from paper_exchange.models import PaperOrder
from tests.concurrency import run_in_threads
from tests.fakes.fixtures import FakeClock
from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tests.fakes.upbit_slow_fill import SlowFillUpbit
from tests.trading.order_support import RecordingExchange, make_signal, paper_exchange
from trading.clients.exchange.errors import (
    InsufficientFundsError,
    OrderNotPlacedError,
    OrderStateUnknownError,
    TransientExchangeError,
)
from trading.models import Order, Position
from trading.services import config as config_service
from trading.services import order_execution
from trading.services.risk import RiskDecision

pytestmark = pytest.mark.django_db


def _buy_decision(amount: str = "100000") -> RiskDecision:
    return RiskDecision(allowed=True, reason="test", side="bid", ord_type="price", price=Decimal(amount))


def test_buy_signal_fills_and_updates_the_position_once() -> None:
    exchange = paper_exchange()
    signal = make_signal("BUY", "0.9")

    order = order_execution.execute_signal(signal, exchange=exchange)

    assert order is not None
    assert order.status == Order.Status.FILLED
    assert order.exchange_state == "done"
    assert order.uuid and order.identifier.startswith("krwbtc-")
    assert order.price == Decimal("100000")  # order_amount_krw default
    assert order.position_applied is True
    assert order.executed_volume == Decimal("0.001")
    position = Position.objects.get(symbol="KRW-BTC")
    assert position.quantity == order.executed_volume
    # The fee is part of the cost basis.
    expected_average = (order.executed_funds + order.paid_fee) / order.executed_volume
    assert position.average_buy_price == expected_average.quantize(Decimal("0.00000001"))
    remote = PaperOrder.objects.get(identifier=order.identifier)
    assert remote.state == "done"
    assert remote.executed_volume == order.executed_volume


def test_executing_the_same_signal_twice_places_one_order() -> None:
    exchange = RecordingExchange(paper_exchange())
    signal = make_signal("BUY")

    first = order_execution.execute_signal(signal, exchange=exchange)
    second = order_execution.execute_signal(signal, exchange=exchange)

    assert first is not None and second is not None
    assert first.pk == second.pk
    assert Order.objects.filter(signal=signal).count() == 1
    assert PaperOrder.objects.count() == 1
    assert [call[0] for call in exchange.calls].count("place_order") == 1


def test_hold_and_refused_signals_place_nothing() -> None:
    exchange = RecordingExchange(paper_exchange())
    assert order_execution.execute_signal(make_signal("HOLD", "0.99"), exchange=exchange) is None
    assert order_execution.execute_signal(make_signal("BUY", "0.3"), exchange=exchange) is None  # < min_confidence
    assert order_execution.execute_signal(make_signal("SELL", "0.9"), exchange=exchange) is None  # no position
    config_service.set_value("trading_enabled", False)
    assert order_execution.execute_signal(make_signal("BUY", "0.9"), exchange=exchange) is None
    config_service.set_value("trading_enabled", True)
    config_service.set_value("trading_paused", True)
    assert order_execution.execute_signal(make_signal("BUY", "0.9"), exchange=exchange) is None

    assert Order.objects.count() == 0
    assert "place_order" not in [call[0] for call in exchange.calls]


def test_buy_then_sell_realizes_pnl_net_of_both_fees() -> None:
    buy = order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange(Decimal("100000000")))
    sell = order_execution.execute_signal(make_signal("SELL"), exchange=paper_exchange(Decimal("110000000")))

    assert buy.status == sell.status == Order.Status.FILLED
    assert sell.side == "ask" and sell.ord_type == "market"
    assert sell.volume == buy.executed_volume
    position = Position.objects.get(symbol="KRW-BTC")
    assert position.quantity == 0
    assert position.average_buy_price == 0
    expected = (sell.executed_funds - sell.paid_fee) - (buy.executed_funds + buy.paid_fee)
    assert abs(position.realized_pnl_krw - expected) < Decimal("0.0001")
    assert position.realized_pnl_krw > Decimal("9000")


def test_buy_is_capped_by_max_position() -> None:
    config_service.set_value("max_position_krw", Decimal("130000"))
    order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
    second = order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())

    assert second is not None
    assert second.price == Decimal("30000")  # 130,000 - 100,000 already held at the same price
    third = order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
    assert third is None  # no room left above the 5,000 KRW minimum


def test_definitive_refusal_marks_the_order_failed_with_the_reason() -> None:
    exchange = paper_exchange()
    order, created = order_execution.create_order(_buy_decision("999999999"), reason="manual")
    assert created

    result = order_execution.run_order(order, exchange=exchange)

    assert result.status == Order.Status.FAILED
    assert "InsufficientFundsError" in result.error
    assert result.position_applied is True
    assert Position.objects.filter(quantity__gt=0).count() == 0


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OrderNotPlacedError("lookup proved it absent"), Order.Status.FAILED),
        (OrderStateUnknownError("lookup failed too"), Order.Status.PENDING),
        (InsufficientFundsError("no money", name="insufficient_funds_bid"), Order.Status.FAILED),
    ],
)
def test_exchange_outcomes_map_to_order_status(error, status) -> None:
    exchange = RecordingExchange(paper_exchange())
    exchange.fail["place_order"] = error
    signal = make_signal("BUY")

    order = order_execution.execute_signal(signal, exchange=exchange)

    assert order.status == status
    assert order.uuid is None
    assert PaperOrder.objects.count() == 0
    # A signal is acted on once: a FAILED attempt is not retried by executing it again.
    again = order_execution.execute_signal(signal, exchange=exchange)
    assert again.pk == order.pk
    assert [call[0] for call in exchange.calls].count("place_order") == 1


def _slow_upbit_exchange(server: SlowFillUpbit, clock: FakeClock):
    from trading.clients.exchange.upbit import UpbitExchange

    return UpbitExchange(
        TEST_ACCESS_KEY,
        TEST_SECRET_KEY,
        server.url,
        1.0,
        1.0,
        sleep=clock.sleep,
        clock=clock,
        close_at_exit=False,
    )


def test_polls_until_the_order_fills(fake_clock: FakeClock) -> None:
    with SlowFillUpbit(hold_fills=True, rate_limits=None) as server:
        exchange = RecordingExchange(_slow_upbit_exchange(server, fake_clock))
        polls = []

        def sleep(seconds: float) -> None:
            polls.append(seconds)
            if len(polls) == 3:
                server.release_fills()

        order = order_execution.execute_signal(make_signal("BUY"), exchange=exchange, sleep=sleep, clock=fake_clock)

        assert order.status == Order.Status.FILLED
        assert polls == [1.0, 1.0, 1.0]
        assert [call[0] for call in exchange.order_calls()] == ["place_order"] + ["get_order"] * 4
        assert Position.objects.get(symbol="KRW-BTC").quantity == order.executed_volume > 0


def test_poll_timeout_leaves_the_order_submitted(fake_clock: FakeClock) -> None:
    config_service.set_value("order_poll_timeout_s", 5)
    with SlowFillUpbit(hold_fills=True, rate_limits=None) as server:
        exchange = _slow_upbit_exchange(server, fake_clock)

        order = order_execution.execute_signal(
            make_signal("BUY"), exchange=exchange, sleep=fake_clock.sleep, clock=fake_clock
        )

        assert order.status == Order.Status.SUBMITTED
        assert order.exchange_state == "wait"
        assert order.uuid is not None
        assert order.position_applied is False
        assert sum(fake_clock.sleeps) == 5.0
        assert not Position.objects.filter(quantity__gt=0).exists()


def test_poll_survives_a_failing_lookup(fake_clock: FakeClock) -> None:
    exchange = RecordingExchange(paper_exchange())
    placed = exchange.inner.place_order(
        market="KRW-BTC", side="bid", ord_type="price", identifier="poll-test", price=Decimal("10000")
    )
    exchange.fail["get_order"] = TransientExchangeError("timeout")

    final = order_execution.poll_order(exchange, placed.uuid, 10, sleep=fake_clock.sleep, clock=fake_clock)

    assert final is not None and final.state == "done"
    assert fake_clock.sleeps == [1.0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_connection_or_transaction_is_held_during_exchange_calls(fake_clock: FakeClock) -> None:
    with SlowFillUpbit(hold_fills=True, rate_limits=None) as server:
        exchange = RecordingExchange(_slow_upbit_exchange(server, fake_clock))

        def sleep(seconds: float) -> None:
            fake_clock.sleep(seconds)
            if len(fake_clock.sleeps) == 2:
                server.release_fills()

        order = order_execution.execute_signal(make_signal("BUY"), exchange=exchange, sleep=sleep, clock=fake_clock)

    assert order.status == Order.Status.FILLED
    order_calls = exchange.order_calls()
    assert len(order_calls) >= 3
    assert all(not held and not in_transaction for _, held, in_transaction in order_calls), order_calls


def test_close_position_sells_everything_and_never_twice() -> None:
    order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
    held = Position.objects.get(symbol="KRW-BTC").quantity

    close = order_execution.close_position("stop_loss", exchange=paper_exchange(Decimal("90000000")))

    assert close.reason == "stop_loss" and close.side == "ask"
    assert close.volume == held and close.status == Order.Status.FILLED
    assert Position.objects.get(symbol="KRW-BTC").quantity == 0
    assert order_execution.close_position("stop_loss", exchange=paper_exchange()) is None  # nothing left


def test_close_position_refuses_while_a_close_order_is_open() -> None:
    order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
    Order.objects.create(market="KRW-BTC", side="ask", ord_type="market", volume=Decimal("0.001"), reason="stop_loss")
    exchange = RecordingExchange(paper_exchange())

    assert order_execution.close_position("take_profit", exchange=exchange) is None
    assert "place_order" not in [call[0] for call in exchange.calls]


def test_close_position_runs_while_paused_but_not_when_disabled() -> None:
    order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
    config_service.set_value("trading_enabled", False)
    assert order_execution.close_position("stop_loss", exchange=paper_exchange()) is None
    config_service.set_value("trading_enabled", True)
    config_service.set_value("trading_paused", True)
    assert order_execution.close_position("stop_loss", exchange=paper_exchange()).status == Order.Status.FILLED


def test_fills_and_failures_are_notified(settings) -> None:
    from tests.fakes.slack import FakeSlack

    with FakeSlack() as slack:
        settings.SLACK_WEBHOOK_URL = slack.webhook_url
        order_execution.execute_signal(make_signal("BUY"), exchange=paper_exchange())
        failing = RecordingExchange(paper_exchange())
        failing.fail["place_order"] = InsufficientFundsError("no money")
        order_execution.execute_signal(make_signal("BUY"), exchange=failing)

    assert any("Order filled" in message for message in slack.messages), slack.messages
    assert any("Order failed" in message for message in slack.messages), slack.messages


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_executions_of_one_signal_place_one_order() -> None:
    signal = make_signal("BUY")
    barrier = threading.Barrier(2)
    exchange = paper_exchange()

    class GatedExchange(RecordingExchange):
        def get_ticker(self, market):
            barrier.wait(timeout=5)  # both threads have passed the "already executed?" check
            return super().get_ticker(market)

    gated = GatedExchange(exchange)

    results, errors = run_in_threads(lambda: order_execution.execute_signal(signal, exchange=gated), 2)

    assert not errors, errors
    assert len(results) == 2
    assert results[0].pk == results[1].pk
    assert Order.objects.filter(signal=signal).count() == 1
    assert PaperOrder.objects.count() == 1
