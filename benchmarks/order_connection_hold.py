"""How long does executing one order hold a pooled DB connection while the exchange is slow to fill?

Setup: a fresh migrated PostgreSQL database (``bench_orderhold``), Django's
native pool, and the fake Upbit (a real HTTP server) whose market orders stay
``wait`` for ``--fill-delay`` seconds (default 5; ``--fill-delay 30`` for the
seed's 30 s poll) and then fill. The pool's ``getconn``/``putconn`` are
wrapped, so the figure is the real time a connection was checked out.

* after:  ``order_execution.execute_signal`` — TX1, then the connection goes
  back to the pool for the placement and the whole poll, TX2, TX3.
One warm-up order is executed first and not counted.

* before: the seed's design simulated with the same steps inside one
  ``transaction.atomic()`` (order, placement, polling, position, commit).

Writes ``benchmarks/out/order_connection_hold.json``. Target: ≤ 50 ms of
connection time per order after, versus about the whole poll before.

    .venv/bin/python benchmarks/order_connection_hold.py [--fill-delay 30] [--repetitions 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_database, median, setup_django, write_json

DATABASE = "bench_orderhold"


class PoolWatch:
    """Wraps the pool's getconn/putconn and sums the time connections spend checked out."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.intervals: list[float] = []
        self._open: dict[int, float] = {}
        self._getconn, self._putconn = pool.getconn, pool.putconn
        pool.getconn = self.getconn
        pool.putconn = self.putconn

    def getconn(self, *args: Any, **kwargs: Any) -> Any:
        conn = self._getconn(*args, **kwargs)
        self._open[id(conn)] = time.perf_counter()
        return conn

    def putconn(self, conn: Any) -> None:
        started = self._open.pop(id(conn), None)
        if started is not None:
            self.intervals.append(time.perf_counter() - started)
        self._putconn(conn)

    def reset(self) -> None:
        self.intervals.clear()

    def still_open(self) -> float:
        now = time.perf_counter()
        return sum(now - started for started in self._open.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill-delay", type=float, default=5.0, help="seconds an order stays 'wait' (default 5)")
    parser.add_argument("--repetitions", type=int, default=5)
    arguments = parser.parse_args(argv)

    with bench_database(DATABASE) as url:
        setup_django(url, DB_POOL_MIN="1", DB_POOL_MAX="4", EXCHANGE="upbit")
        result = _run(arguments.fill_delay, arguments.repetitions)
    path = write_json("order_connection_hold", result)
    print(
        f"fill delay {arguments.fill_delay:g} s: connection held per order "
        f"after {result['after']['connection_ms_median']:.1f} ms "
        f"(wall {result['after']['wall_s_median']:.1f} s), "
        f"before {result['before']['connection_ms_median']:.0f} ms "
        f"(wall {result['before']['wall_s_median']:.1f} s) → {path}"
    )
    return 0 if result["after"]["connection_ms_median"] <= 50 else 1


def _run(fill_delay: float, repetitions: int) -> dict[str, Any]:
    from decimal import Decimal

    from django.core.cache import caches
    from django.db import connection, transaction

    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
    from tests.fakes.upbit_slow_fill import SlowFillUpbit
    from trading.clients.exchange.upbit import UpbitExchange
    from trading.models import Order, TradingSignal
    from trading.services import config as config_service
    from trading.services import order_execution
    from trading.services.position import apply_order_to_position

    config_service.set_value("order_poll_timeout_s", int(fill_delay) + 10)
    connection.ensure_connection()
    watch = PoolWatch(connection.pool)
    connection.close()

    def new_signal() -> TradingSignal:
        signal = TradingSignal.objects.create(
            signal_type="BUY", confidence=Decimal("0.9"), provider="benchmark", model_name="benchmark"
        )
        connection.close()
        return signal

    def after(exchange: UpbitExchange) -> tuple[float, float, int]:
        signal = new_signal()
        caches["exchange"].clear()
        watch.reset()
        started = time.perf_counter()
        order = order_execution.execute_signal(signal, exchange=exchange)
        connection.close()
        wall = time.perf_counter() - started
        assert order is not None and order.status == Order.Status.FILLED, order
        intervals_ms.append([round(item * 1000, 2) for item in watch.intervals])
        return sum(watch.intervals), wall, len(watch.intervals)

    def before(exchange: UpbitExchange) -> tuple[float, float, int]:
        signal = new_signal()
        watch.reset()
        started = time.perf_counter()
        with transaction.atomic():  # the seed's design: one transaction around everything
            order = Order.objects.create(
                market="KRW-BTC", side="bid", ord_type="price", price=Decimal("100000"), signal=signal
            )
            placed = exchange.place_order(
                market="KRW-BTC", side="bid", ord_type="price", identifier=order.identifier, price=order.price
            )
            final = order_execution.poll_order(exchange, placed.uuid, fill_delay + 10)
            order_execution.record_exchange_order(order.pk, final)
            apply_order_to_position(order.pk)
        connection.close()
        wall = time.perf_counter() - started
        return sum(watch.intervals), wall, len(watch.intervals)

    runs: dict[str, list[tuple[float, float, int]]] = {"after": [], "before": []}
    intervals_ms: list[list[float]] = []
    with SlowFillUpbit(fill_after_s=fill_delay, rate_limits=None, krw_balance=Decimal("100000000")) as server:
        exchange = UpbitExchange(TEST_ACCESS_KEY, TEST_SECRET_KEY, server.url, 3.0, 5.0, close_at_exit=False)
        after(exchange)  # warm-up (imports, first queries), not counted
        intervals_ms.clear()
        for round_number in range(repetitions):
            order = (("before", before), ("after", after))
            for name, function in order if round_number % 2 else reversed(order):
                runs[name].append(function(exchange))
        exchange.close()

    def side(name: str) -> dict[str, Any]:
        held = [round(item[0] * 1000, 2) for item in runs[name]]
        walls = [round(item[1], 3) for item in runs[name]]
        return {
            "connection_ms_runs": held,
            "connection_ms_median": median(held),
            "wall_s_runs": walls,
            "wall_s_median": median(walls),
            "checkouts_per_order": [item[2] for item in runs[name]],
        }

    result_after, result_before = side("after"), side("before")
    return {
        "fill_delay_s": fill_delay,
        "poll_interval_s": order_execution.POLL_INTERVAL_S,
        "repetitions": repetitions,
        "after": result_after,
        "before": result_before,
        "after_checkout_intervals_ms": intervals_ms,
        "connection_time_ratio_after_over_before": (
            result_after["connection_ms_median"] / result_before["connection_ms_median"]
            if result_before["connection_ms_median"]
            else None
        ),
        "target_after_ms": 50,
        "meets_target": result_after["connection_ms_median"] <= 50,
    }


if __name__ == "__main__":
    sys.exit(main())
