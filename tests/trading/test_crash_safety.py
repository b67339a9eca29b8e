"""SIGKILL at each crash point of order execution, then reconciliation by identifier (PostgreSQL + fake Upbit).

For each crash point a real subprocess executes a BUY signal against the fake
Upbit (a real HTTP server in this test process) and kills itself with SIGKILL
at that point. This process then runs ``reconcile_pending_orders()`` twice and
checks against the fake exchange's own record: the order's true state and
fills, the position equal to the fills, exactly one order on the exchange per
signal (none when the crash came before placement), nothing placed twice —
also when the same signal is executed again afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tests.fakes.upbit_slow_fill import SlowFillUpbit
from tests.trading.order_support import make_signal
from trading.clients.exchange.upbit import UpbitExchange
from trading.models import Order, Position
from trading.services import order_execution
from trading.services.reconciliation import reconcile_pending_orders

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{settings.get('HOST') or '127.0.0.1'}:{settings.get('PORT') or 5432}/{settings['NAME']}"


def _run_worker(signal_id: int, crash_at: str, upbit_url: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _database_url(),
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "2",
        "EXCHANGE": "upbit",
        "UPBIT_API_URL": upbit_url,
        "UPBIT_ACCESS_KEY": TEST_ACCESS_KEY,
        "UPBIT_SECRET_KEY": TEST_SECRET_KEY,
        "UPBIT_CONNECT_TIMEOUT": "2",
        "UPBIT_READ_TIMEOUT": "2",
        "SLACK_WEBHOOK_URL": "",
        "GEMINI_API_KEY": "",
        "LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "tests.trading.crash_worker", str(signal_id), crash_at],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _client(server: SlowFillUpbit) -> UpbitExchange:
    return UpbitExchange(TEST_ACCESS_KEY, TEST_SECRET_KEY, server.url, 2.0, 2.0, close_at_exit=False)


@pytest.mark.parametrize(
    ("crash_at", "status_after_crash", "placed"),
    [
        ("after_tx1", Order.Status.PENDING, False),
        ("after_place", Order.Status.PENDING, True),
        ("during_poll", Order.Status.SUBMITTED, True),
        ("before_tx3", Order.Status.FILLED, True),
    ],
)
def test_sigkill_at_each_crash_point_is_reconciled_by_identifier(crash_at, status_after_crash, placed) -> None:
    with SlowFillUpbit(rate_limits=None, hold_fills=crash_at == "during_poll") as server:
        signal_row = make_signal("BUY", "0.95")

        worker = _run_worker(signal_row.pk, crash_at, server.url)

        assert worker.returncode == -signal.SIGKILL, (worker.returncode, worker.stdout, worker.stderr[-3000:])
        assert f"crashing at {crash_at}" in worker.stdout
        order = Order.objects.get(signal=signal_row)
        assert order.status == status_after_crash
        assert order.position_applied is False
        posts = server.calls("/v1/orders", "POST")
        assert len(posts) == (1 if placed else 0)
        if crash_at == "during_poll":
            assert order.uuid is not None and order.exchange_state == "wait"
            server.release_fills()  # the exchange fills the order while nobody is watching

        exchange = _client(server)
        first = reconcile_pending_orders(exchange=exchange, pending_grace=timedelta(0))
        second = reconcile_pending_orders(exchange=exchange, pending_grace=timedelta(0))

        assert first.errors == 0 and second.errors == 0
        assert second.checked == 0 and second.positions_applied == 0 and second.updated == 0
        order.refresh_from_db()
        remote_orders = [row for row in server.orders.values() if row["identifier"] == order.identifier]
        position = Position.objects.filter(symbol="KRW-BTC").first()
        if placed:
            assert len(remote_orders) == 1
            remote = remote_orders[0]
            assert order.status == Order.Status.FILLED and remote["state"] == "done"
            assert order.uuid == remote["uuid"]
            assert order.executed_volume == remote["executed_volume"] > 0
            assert order.paid_fee == remote["paid_fee"]
            assert order.executed_funds == sum(trade["funds"] for trade in remote["trades"])
            assert order.position_applied is True
            assert position.quantity == remote["executed_volume"]
            expected_average = (order.executed_funds + order.paid_fee) / order.executed_volume
            assert position.average_buy_price == expected_average.quantize(Decimal("0.00000001"))
        else:
            assert remote_orders == []
            assert order.status == Order.Status.FAILED
            assert "never reached the exchange" in order.error
            assert position is None or position.quantity == 0

        # Executing the same signal again (a retried job, another cluster) places nothing new.
        again = order_execution.execute_signal(signal_row, exchange=exchange)
        assert again.pk == order.pk
        assert len(server.calls("/v1/orders", "POST")) == (1 if placed else 0)
        assert Order.objects.count() == 1
        assert server.order_count() == (1 if placed else 0)
