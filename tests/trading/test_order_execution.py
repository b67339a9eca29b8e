"""Order execution: TX1 / exchange / TX2 / TX3 with no connection held across the network, one order per signal."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from paper_exchange.models import PaperOrder
from tests.concurrency import run_in_threads
from tests.fakes.fixtures import FakeClock
from tests.fakes.http import Fault
from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeUpbit, error_body
from tests.fakes.upbit_slow_fill import SlowFillUpbit
from tests.trading.order_support import RecordingExchange, make_signal, paper_exchange
from trading.clients.exchange.errors import (
    BannedError,
    InsufficientFundsError,
    OrderNotPlacedError,
    OrderStateUnknownError,
    RateLimitedError,
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
        (OrderStateUnknownError("lookup failed too"), Order.Status.PENDING),
        (InsufficientFundsError("no money", name="insufficient_funds_bid"), Order.Status.FAILED),
        (RateLimitedError("429", retry_after=1.0), Order.Status.FAILED),
        (BannedError("418", until=datetime(2030, 1, 1, tzinfo=UTC)), Order.Status.FAILED),
    ],
)
def test_exchange_outcomes_map_to_order_status(error, status) -> None:
    """Outcomes other than "proved not placed" are never re-placed: one order row, one placement."""
    exchange = RecordingExchange(paper_exchange())
    exchange.fail["place_order"] = error
    signal = make_signal("BUY")

    order = order_execution.execute_signal(signal, exchange=exchange)

    assert order.status == status
    assert order.uuid is None
    assert PaperOrder.objects.count() == 0
    assert Order.objects.filter(signal=signal).count() == 1
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


# ---------------------------------------------------------------- bounded re-placement (fake Upbit, real client)

SERVER_ERROR = Fault.status(503, error_body("server_error", "temporarily unavailable"))


def _posts(server: FakeUpbit) -> int:
    return len(server.calls("/v1/orders", "POST"))


class RecordingSleep:
    """The execution's injected sleep: records the waits and moves the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.sleep(seconds)


def test_a_placement_proved_absent_is_placed_again_under_a_new_identifier(fake_clock: FakeClock) -> None:
    with FakeUpbit(rate_limits=None) as server, capture_logs() as logs:
        server.add_fault([SERVER_ERROR, Fault.reset()], path="/v1/orders", method="POST", times=2)
        exchange = _slow_upbit_exchange(server, fake_clock)
        sleep = RecordingSleep(fake_clock)
        signal = make_signal("BUY")

        order = order_execution.execute_signal(signal, exchange=exchange, sleep=sleep, clock=fake_clock)

        assert _posts(server) == 3
        assert server.order_count() == 1
    assert order.status == Order.Status.FILLED
    rows = list(Order.objects.filter(signal=signal).order_by("created_at", "pk"))
    assert [row.status for row in rows] == [Order.Status.FAILED, Order.Status.FAILED, Order.Status.FILLED]
    assert rows[-1].pk == order.pk
    assert len({row.identifier for row in rows}) == 3
    assert all("never reached the exchange" in row.error for row in rows[:2])
    assert all(row.uuid is None and row.executed_volume == 0 for row in rows[:2])
    assert sleep.waits == [1.0, 2.0]
    assert Position.objects.get(symbol="KRW-BTC").quantity == order.executed_volume > 0
    replaced = [entry for entry in logs if entry["event"] == "order_replaced"]
    assert [(entry["attempt"], entry["previous_identifier"]) for entry in replaced] == [
        (2, rows[0].identifier),
        (3, rows[1].identifier),
    ]
    # Executing the signal again returns its filled order; nothing more is placed.
    assert order_execution.execute_signal(signal, exchange=exchange).pk == order.pk


def test_every_placement_proved_absent_gives_up_with_every_attempt_failed(settings, fake_clock: FakeClock) -> None:
    from tests.fakes.slack import FakeSlack

    with FakeUpbit(rate_limits=None) as server, FakeSlack() as slack, capture_logs() as logs:
        settings.SLACK_WEBHOOK_URL = slack.webhook_url
        server.add_fault(SERVER_ERROR, path="/v1/orders", method="POST", times=order_execution.MAX_PLACEMENTS)
        exchange = _slow_upbit_exchange(server, fake_clock)
        signal = make_signal("BUY")

        order = order_execution.execute_signal(
            signal, exchange=exchange, sleep=RecordingSleep(fake_clock), clock=fake_clock
        )

        assert _posts(server) == order_execution.MAX_PLACEMENTS == 5
        assert server.order_count() == 0
    rows = list(Order.objects.filter(signal=signal))
    assert len(rows) == order_execution.MAX_PLACEMENTS and all(row.status == Order.Status.FAILED for row in rows)
    assert order.pk == rows[0].pk  # the latest attempt, returned FAILED (the job records it, no exception)
    assert not Position.objects.filter(quantity__gt=0).exists()
    gave_up = [entry for entry in logs if entry["event"] == "order_not_placed_giving_up"]
    assert len(gave_up) == 1 and gave_up[0]["log_level"] == "error"
    assert gave_up[0]["attempt"] == order_execution.MAX_PLACEMENTS and gave_up[0]["reason"] == "attempts exhausted"
    failed_alerts = [message for message in slack.messages if "Order failed" in message]
    assert len(failed_alerts) == 1, slack.messages  # the retried attempts are not alerted one by one


def test_an_unknown_placement_state_is_left_pending_and_never_placed_again(fake_clock: FakeClock) -> None:
    with FakeUpbit(rate_limits=None) as server:
        server.add_fault(SERVER_ERROR, path="/v1/orders", method="POST", times=1)
        server.add_fault(SERVER_ERROR, path="/v1/order", method="GET", times=10)  # the lookup fails too
        exchange = _slow_upbit_exchange(server, fake_clock)
        sleep = RecordingSleep(fake_clock)
        signal = make_signal("BUY")

        order = order_execution.execute_signal(signal, exchange=exchange, sleep=sleep, clock=fake_clock)

        assert _posts(server) == 1
    assert order.status == Order.Status.PENDING
    assert Order.objects.filter(signal=signal).count() == 1
    assert sleep.waits == []


def test_insufficient_funds_at_the_exchange_fails_once_without_retry(fake_clock: FakeClock) -> None:
    with FakeUpbit(rate_limits=None) as server:
        refusal = Fault.status(400, error_body("insufficient_funds_bid", "Insufficient KRW balance."))
        server.add_fault(refusal, path="/v1/orders", method="POST", times=1)
        exchange = _slow_upbit_exchange(server, fake_clock)
        signal = make_signal("BUY")

        order = order_execution.execute_signal(signal, exchange=exchange, sleep=fake_clock.sleep, clock=fake_clock)

        assert _posts(server) == 1
        assert server.order_count() == 0
    assert order.status == Order.Status.FAILED
    assert "InsufficientFundsError" in order.error
    assert Order.objects.filter(signal=signal).count() == 1


def test_manual_orders_get_the_same_bounded_re_placement(fake_clock: FakeClock) -> None:
    with FakeUpbit(rate_limits=None) as server:
        server.add_fault(SERVER_ERROR, path="/v1/orders", method="POST", times=1)
        exchange = _slow_upbit_exchange(server, fake_clock)

        order = order_execution.place_manual_order(
            "buy", krw_amount=Decimal("50000"), exchange=exchange, sleep=fake_clock.sleep, clock=fake_clock
        )

        assert server.order_count() == 1
    assert order.status == Order.Status.FILLED and order.reason == Order.Reason.MANUAL
    statuses = list(Order.objects.order_by("created_at", "pk").values_list("status", "reason", "price"))
    assert statuses == [
        (Order.Status.FAILED, Order.Reason.MANUAL, Decimal("50000")),
        (Order.Status.FILLED, Order.Reason.MANUAL, Decimal("50000")),
    ]


def test_no_re_placement_starts_after_the_placement_budget(fake_clock: FakeClock) -> None:
    with FakeUpbit(rate_limits=None) as server:
        server.add_fault(SERVER_ERROR, path="/v1/orders", method="POST", times=3)
        exchange = _slow_upbit_exchange(server, fake_clock)
        order, _ = order_execution.create_order(_buy_decision(), reason="manual")
        # The first placement took almost the whole budget: the 1 s wait would end beyond it.
        readings = iter([0.0, order_execution.PLACEMENT_BUDGET_S - 0.5])
        sleep = RecordingSleep(fake_clock)

        result = order_execution.run_order(order, exchange=exchange, sleep=sleep, clock=lambda: next(readings))

        assert _posts(server) == 1
    assert result.status == Order.Status.FAILED
    assert Order.objects.count() == 1
    assert sleep.waits == []


def test_a_paper_placement_proved_absent_is_re_placed_once_and_fills() -> None:
    exchange = RecordingExchange(paper_exchange())
    exchange.fail["place_order"] = OrderNotPlacedError("lookup proved it absent")
    waits: list[float] = []
    signal = make_signal("BUY")

    order = order_execution.execute_signal(signal, exchange=exchange, sleep=waits.append)

    assert order.status == Order.Status.FILLED
    assert list(Order.objects.filter(signal=signal).order_by("created_at", "pk").values_list("status", flat=True)) == [
        Order.Status.FAILED,
        Order.Status.FILLED,
    ]
    assert PaperOrder.objects.count() == 1
    assert waits == [1.0]


def test_an_order_chance_failure_writes_no_order_row() -> None:
    """Risk checks (order chance, ticker) run before TX1: a read that fails after its retries leaves nothing behind."""
    exchange = RecordingExchange(paper_exchange())
    exchange.fail["get_order_chance"] = TransientExchangeError("503 after 4 attempts")

    with pytest.raises(TransientExchangeError):
        order_execution.execute_signal(make_signal("BUY"), exchange=exchange)

    assert Order.objects.count() == 0
    assert "place_order" not in [call[0] for call in exchange.calls]
