"""``manage.py place_order`` and ``place_manual_order``: the signal's order path, clear refusals, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from paper_exchange.models import PaperOrder
from tests.trading.order_support import RecordingExchange, paper_exchange
from trading.models import Order, Position
from trading.services import config as config_service
from trading.services import order_execution

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("place_order", *args, stdout=out)
    return out.getvalue()


def assert_nothing_written() -> None:
    assert Order.objects.count() == 0
    assert PaperOrder.objects.count() == 0
    assert Position.objects.filter(quantity__gt=0).count() == 0


def test_buy_command_fills_on_the_paper_exchange_and_updates_the_position():
    output = run("buy", "--krw", "10000")
    order = Order.objects.get()
    assert (order.status, order.side, order.ord_type, order.reason) == ("FILLED", "bid", "price", "manual")
    assert order.price == Decimal("10000") and order.identifier.startswith("krwbtc-")
    assert order.position_applied and order.executed_volume > 0
    remote = PaperOrder.objects.get(identifier=order.identifier)
    assert (remote.state, remote.executed_volume, remote.executed_funds) == (
        "done",
        order.executed_volume,
        order.executed_funds,
    )
    position = Position.objects.get(symbol="KRW-BTC")
    assert position.quantity == order.executed_volume  # Decimal-exact, no float rounding
    assert isinstance(position.quantity, Decimal)
    expected_average = ((order.executed_funds + order.paid_fee) / order.executed_volume).quantize(Decimal("1e-8"))
    assert position.average_buy_price == expected_average
    assert f"Order {order.identifier}: FILLED" in output and f"Position KRW-BTC: {position.quantity}" in output


def test_sell_and_close_commands_sell_through_the_same_path():
    run("buy", "--krw", "20000")
    held = Position.objects.get().quantity
    part = (held / 2).quantize(Decimal("1e-8"))
    run("sell", "--volume", str(part))
    sell = Order.objects.get(side="ask")
    assert (sell.status, sell.volume, sell.executed_volume, sell.reason) == ("FILLED", part, part, "manual")
    assert Position.objects.get().quantity == held - part

    run("close")
    close = Order.objects.filter(side="ask").order_by("-created_at").first()
    assert (close.status, close.volume, close.reason) == ("FILLED", held - part, "manual")
    assert Position.objects.get().quantity == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("buy", "--krw", "4999"), r"below the minimum order \(5000 KRW\)"),
        (("buy", "--krw", "10000.5"), "more decimal places"),
        (("buy", "--krw", "5000000"), "above max_position_krw"),
        (("sell", "--volume", "0.0001"), "insufficient BTC"),
        (("close",), "no position to sell"),
        (("buy",), "buy needs --krw"),
        (("sell", "--volume", "0.0001", "--krw", "1"), "sell needs --volume"),
    ],
)
def test_rejections_are_clear_and_write_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert_nothing_written()


def test_trading_disabled_rejects_every_manual_order():
    config_service.set_value("trading_enabled", False)
    for args in (("buy", "--krw", "10000"), ("sell", "--volume", "0.0001"), ("close",)):
        with pytest.raises(CommandError, match="trading is disabled"):
            run(*args)
    assert_nothing_written()


def test_insufficient_krw_is_refused_before_any_row():
    config_service.set_value("paper_starting_krw", Decimal("6000"))
    with pytest.raises(CommandError, match="insufficient KRW"):
        run("buy", "--krw", "6000")  # 6000 plus the fee is more than the 6000 KRW balance
    assert_nothing_written()


def test_a_paused_system_still_takes_a_deliberate_manual_order():
    config_service.set_value("trading_paused", True)
    run("buy", "--krw", "10000")
    assert Order.objects.get().status == "FILLED"


@pytest.mark.django_db(transaction=True)
def test_service_records_the_operator_and_holds_no_connection_during_exchange_calls(django_user_model):
    operator = django_user_model.objects.create_user("desk", is_staff=True)
    exchange = RecordingExchange(paper_exchange())
    order = order_execution.place_manual_order("buy", krw_amount=Decimal("10000"), user=operator, exchange=exchange)
    assert order.user == operator and order.status == Order.Status.FILLED
    assert order.executed_volume == Decimal("0.0001")  # 10,000 KRW at 100,000,000 KRW/BTC
    assert exchange.order_calls() and all(not held and not in_tx for _, held, in_tx in exchange.order_calls())


def test_service_refuses_a_second_sell_while_one_is_open():
    order_execution.place_manual_order("buy", krw_amount=Decimal("10000"), exchange=paper_exchange())
    Order.objects.create(market="KRW-BTC", side="ask", ord_type="market", volume=Decimal("0.0001"), reason="manual")
    with pytest.raises(order_execution.ManualOrderRejected, match="still open"):
        order_execution.place_manual_order("sell", volume=Decimal("0.0001"), exchange=paper_exchange())
    with pytest.raises(order_execution.ManualOrderRejected, match="still open"):
        order_execution.close_position_manually(exchange=paper_exchange())


@pytest.mark.parametrize("side", ["hold", ""])
def test_service_rejects_an_unknown_side(side):
    with pytest.raises(order_execution.ManualOrderRejected, match="buy or sell"):
        order_execution.place_manual_order(side, krw_amount=Decimal("10000"))


def _database_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host, port = settings.get("HOST") or "127.0.0.1", settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_manage_py_exits_non_zero_on_a_rejection_and_zero_on_a_fill():
    env = {**os.environ, "DATABASE_URL": _database_url(), "SLACK_WEBHOOK_URL": "", "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def manage(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "manage.py", "place_order", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    refused = manage("buy", "--krw", "100")
    assert refused.returncode == 1
    assert "order rejected, nothing placed" in refused.stderr and "minimum order" in refused.stderr
    assert Order.objects.count() == 0
    filled = manage("buy", "--krw", "10000")
    assert filled.returncode == 0, filled.stderr
    assert "FILLED" in filled.stdout and Order.objects.get().status == "FILLED"
