"""Drill: SIGKILL during order execution, 20 times with random timing — 0 orders lost, 0 duplicated.

Reuses the pipeline's crash worker (``tests/trading/crash_worker.py``): a real
subprocess executes one BUY signal against the fake Upbit whose market orders
fill about a second after placement (``SlowFillUpbit``, a real HTTP server in
this process) on PostgreSQL (a private ``bench_crash`` database). Each round it
is killed with SIGKILL either by the worker's own hook at one of the crash
points (``after_tx1``, ``after_place``, ``during_poll``, ``before_tx3`` — each
at least once) or from outside after a random delay. After each kill this
process runs reconciliation (as the 5-minute job would) twice.

Then, against the fake exchange's own book:
- lost = an order on the exchange with no row here, or a row still open / not
  matching the exchange's fills after reconciliation;
- duplicated = more than one exchange order for a signal, or more than one
  live order row per signal;
- the position equals the sum of the exchange's fills.

    .venv/bin/python -m benchmarks.drills.crash [--rounds 20] [--seed N]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal as signals
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from benchmarks import common

DATABASE = "bench_crash"
CRASH_POINTS = ("after_tx1", "after_place", "during_poll", "before_tx3")


def worker_env(url: str, upbit_url: str) -> dict[str, str]:
    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY

    env = common.django_env(
        None,
        DATABASE_URL=url,
        DB_POOL_MIN="1",
        DB_POOL_MAX="2",
        EXCHANGE="upbit",
        UPBIT_API_URL=upbit_url,
        UPBIT_ACCESS_KEY=TEST_ACCESS_KEY,
        UPBIT_SECRET_KEY=TEST_SECRET_KEY,
        UPBIT_CONNECT_TIMEOUT="2",
        UPBIT_READ_TIMEOUT="2",
        SLACK_WEBHOOK_URL="",
        GEMINI_API_KEY="",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    worker = common.ROOT / "tests" / "trading" / "crash_worker.py"
    if not worker.exists():
        print("crash: NOT RUN: tests/trading/crash_worker.py is missing (pipeline crash worker not landed)")
        return 2
    rng = random.Random(args.seed)

    from tests.fakes.upbit_slow_fill import SlowFillUpbit

    with common.bench_database(DATABASE) as url:
        common.setup_django(url, DB_POOL_MIN="1", DB_POOL_MAX="4", EXCHANGE="upbit")
        if not args.verbose:
            logging.disable(logging.CRITICAL)
        from django.db import connections

        from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
        from trading.clients.exchange.upbit import UpbitExchange
        from trading.models import Order, Position, TradingSignal
        from trading.services import config as config_service
        from trading.services.reconciliation import reconcile_pending_orders

        for key, value in {
            "min_confidence": "0.1",
            "trading_enabled": "true",
            "max_position_krw": "1000000000",
        }.items():
            try:
                config_service.set_value(key, value)
            except Exception as error:
                print(f"note: could not set {key}: {error}", file=sys.stderr)
        modes: Counter[str] = Counter()
        killed = 0
        reconcile_errors = 0
        with SlowFillUpbit(rate_limits=None, fill_after_s=1.0, krw_balance=Decimal("100000000000")) as server:
            client = UpbitExchange(TEST_ACCESS_KEY, TEST_SECRET_KEY, server.url, 2.0, 2.0, close_at_exit=False)
            env = worker_env(url, server.url)
            try:
                for round_number in range(args.rounds):
                    signal_row = TradingSignal.objects.create(
                        signal_type="BUY", confidence=Decimal("0.95"), provider="drill", model_name="drill"
                    )
                    if round_number < len(CRASH_POINTS):
                        mode = CRASH_POINTS[round_number]
                    else:
                        mode = rng.choice([*CRASH_POINTS, "random_time"])
                    modes[mode] += 1
                    command = [common.PYTHON, "-m", "tests.trading.crash_worker", str(signal_row.pk)]
                    command.append("never" if mode == "random_time" else mode)
                    process = subprocess.Popen(
                        command, cwd=common.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                    )
                    if mode == "random_time":
                        # Django start-up takes ~1 s; the order steps follow within ~2 s.
                        time.sleep(rng.uniform(0.8, 3.5))
                        if process.poll() is None:
                            os.kill(process.pid, signals.SIGKILL)
                    process.communicate(timeout=120)
                    killed += process.returncode == -signals.SIGKILL
                    for _ in range(2):
                        outcome = reconcile_pending_orders(exchange=client, pending_grace=timedelta(0))
                        reconcile_errors += outcome.errors
                # Orders killed while the exchange had not filled them yet fill a moment later; the
                # next reconciliation (every 5 min in production) settles them.
                time.sleep(1.5)
                for _ in range(2):
                    reconcile_errors += reconcile_pending_orders(exchange=client, pending_grace=timedelta(0)).errors
            finally:
                client.close()
            book = list(server.orders.values())
        rows = {order.identifier: order for order in Order.objects.all()}
        lost = [o["identifier"] for o in book if o["identifier"] not in rows]
        per_signal = Counter(rows[o["identifier"]].signal_id for o in book if o["identifier"] in rows)
        duplicated_exchange = sum(count - 1 for count in per_signal.values() if count > 1)
        live_per_signal = Counter(o.signal_id for o in rows.values() if o.status != Order.Status.FAILED)
        duplicated_rows = sum(count - 1 for count in live_per_signal.values() if count > 1)
        still_open = sum(1 for o in rows.values() if o.status in Order.OPEN_STATUSES)
        mismatched = 0
        for remote in book:
            local = rows.get(remote["identifier"])
            if local is not None and (
                local.status != Order.Status.FILLED or local.executed_volume != remote["executed_volume"]
            ):
                mismatched += 1
        filled = sum((o["executed_volume"] for o in book), Decimal("0"))
        position = Position.objects.filter(symbol="KRW-BTC").first()
        position_ok = (position.quantity if position else Decimal("0")) == filled
        connections.close_all()
    lost_total = len(lost) + mismatched + still_open
    failures = []
    if lost_total:
        failures.append(f"{lost_total} lost (unknown {len(lost)}, not matching {mismatched}, open {still_open})")
    if duplicated_exchange or duplicated_rows:
        failures.append(f"duplicated: {duplicated_exchange} on the exchange, {duplicated_rows} rows")
    if not position_ok:
        failures.append("position differs from the exchange's fills")
    if reconcile_errors:
        failures.append(f"{reconcile_errors} reconciliation errors")
    verdict = "PASS" if not failures else "FAIL"
    figures = {
        "rounds": args.rounds,
        "seed": args.seed,
        "killed": killed,
        "modes": dict(modes),
        "exchange_orders": len(book),
        "order_rows": len(rows),
        "lost": lost_total,
        "duplicated": duplicated_exchange + duplicated_rows,
        "position_matches_fills": position_ok,
    }
    print(
        f"crash: {verdict}: "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
        + (f"; missed: {'; '.join(failures)}" if failures else "")
    )
    common.write_json("drill_crash", {"verdict": verdict, "figures": figures, "missed": failures})
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
