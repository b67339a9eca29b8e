"""Drill: the exchange misbehaves — 30 % transient failures, an outage, a 418 ban — and the system copes.

The real jobs (``trading.jobs.run_once``: market-data collection and order
reconciliation) and order execution (``execute_signal``) run in this process
on PostgreSQL (a private ``bench_faults`` database) against the fake Upbit
(``tests/fakes/upbit.py``) through the real ``UpbitExchange`` client (the
shared retry policy, the rate limiter); only the retry waits are skipped
(injected sleep) so a phase takes seconds, not minutes.

1. transient: 30 % of calls answer 503 or reset the connection — cycles
   (a collection; every 5th cycle also a BUY or SELL executed and reconciled)
   must succeed >= 99 %;
2. outage (``--outage`` seconds, default 120, ``--quick`` 10): every call fails —
   the ``upbit_api`` health check is unhealthy, jobs end with a clean failure
   (no exception, no row written);
3. ban: one 418 with ``Retry-After`` — no request reaches the exchange while the
   ban lasts, beyond the one that earned it;
4. recovery, same process, no restart: health healthy, jobs succeed again.

Prints one verdict line; exit 1 when a bar is missed.

    .venv/bin/python -m benchmarks.drills.exchange_faults [--quick] [--outage S] [--cycles N]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from benchmarks import common

DATABASE = "bench_faults"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s outage, 100 cycles")
    parser.add_argument("--outage", type=float, help="outage seconds (default 120; quick 10)")
    parser.add_argument("--cycles", type=int, help="cycles under 30 %% failures (default 300; quick 100)")
    parser.add_argument("--ban-seconds", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="keep the system's own (JSON) logs")
    args = parser.parse_args(argv)
    outage = args.outage if args.outage is not None else (10.0 if args.quick else 120.0)
    cycles = args.cycles or (100 if args.quick else 300)

    from tests.fakes.http import Fault
    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeUpbit

    upbit = FakeUpbit(krw_balance=Decimal("1000000000"), btc_balance=Decimal("1"), rate_limits=None, port=free_port())
    upbit.start()
    try:
        with common.bench_database(DATABASE) as url:
            common.setup_django(
                url,
                DB_POOL_MIN="1",
                DB_POOL_MAX="4",
                EXCHANGE="upbit",
                UPBIT_API_URL=upbit.url,
                UPBIT_ACCESS_KEY=TEST_ACCESS_KEY,
                UPBIT_SECRET_KEY=TEST_SECRET_KEY,
                UPBIT_CONNECT_TIMEOUT="1",
                UPBIT_READ_TIMEOUT="1",
                SLACK_WEBHOOK_URL="",
                GEMINI_API_KEY="",
            )
            if not args.verbose:
                logging.disable(logging.CRITICAL)  # the expected failures would flood the output
            try:
                return run(upbit, Fault, outage, cycles, args.ban_seconds, TEST_ACCESS_KEY, TEST_SECRET_KEY)
            finally:
                from django.db import connections

                connections.close_all()
    finally:
        upbit.stop()


def run(upbit: Any, Fault: Any, outage: float, cycles: int, ban_seconds: int, access: str, secret: str) -> int:
    from health.checks import ExchangeCheck
    from health.runner import evaluate
    from trading import jobs
    from trading.clients import exchange as exchange_factory
    from trading.clients.exchange.upbit import UpbitExchange
    from trading.models import MarketData, Order, TradingSignal
    from trading.services import config as config_service
    from trading.services.order_execution import execute_signal

    # The process-wide client, with retry waits skipped (the policy itself — attempts, which errors — is real).
    client = UpbitExchange(access, secret, upbit.url, 1.0, 1.0, sleep=lambda seconds: None)
    exchange_factory._instance, exchange_factory._owner_pid = client, os.getpid()
    client.close = lambda: None  # the health check closes "its" exchange; this one is shared

    for key, value in {"min_confidence": "0.1", "trading_enabled": "true", "max_position_krw": "100000000"}.items():
        try:
            config_service.set_value(key, value)
        except Exception as error:  # a renamed setting must not stop the drill; it is reported
            print(f"note: could not set {key}: {error}", file=sys.stderr)

    def health() -> str:
        return evaluate(ExchangeCheck()).status

    figures: dict[str, Any] = {}
    failures: list[str] = []

    # 1. transient failures ---------------------------------------------------------------------
    upbit.add_fault(
        [Fault.status(503, {"error": {"name": "server_error", "message": "x"}}), Fault.reset()], fraction=0.3, seed=8
    )
    ok = collected = executed_ok = 0
    executions = 0
    outcomes: Counter[str] = Counter()
    failed_errors: list[str] = []
    for cycle in range(cycles):
        result = jobs.run_once("collect_market_data")
        cycle_ok = result.success
        collected += result.success
        if cycle % 5 == 4:
            executions += 1
            execution_ok = True
            signal = TradingSignal.objects.create(
                signal_type="BUY" if executions % 2 else "SELL",
                confidence=Decimal("0.95"),
                provider="drill",
                model_name="drill",
            )
            try:
                order = execute_signal(signal)
                jobs.run_once("sync_pending_orders")
                order = Order.objects.filter(signal=signal).first() if order is not None else None
                outcomes[order.status if order is not None else "not placed (risk checks)"] += 1
                if order is not None and order.status == Order.Status.FAILED:
                    failed_errors.append(order.error[:160])
                if order is not None and order.status != Order.Status.FILLED:
                    execution_ok = False  # failed, or left open although reconciliation ran
            except Exception as error:
                execution_ok = False
                print(f"cycle {cycle}: execution raised {type(error).__name__}: {error}", file=sys.stderr)
            executed_ok += execution_ok
            cycle_ok = cycle_ok and execution_ok
        ok += cycle_ok
    upbit.clear_faults()
    jobs.run_once("sync_pending_orders")
    success_pct = 100 * ok / cycles
    figures["transient_success_pct"] = round(success_pct, 2)
    figures["collection_success_pct"] = round(100 * collected / cycles, 2)
    figures["execution_success_pct"] = round(100 * executed_ok / max(executions, 1), 2)
    figures["executions"] = dict(outcomes)
    if failed_errors:
        figures["failed_order_errors"] = failed_errors[:3]
    if success_pct < 99:
        failures.append(f"transient cycles {success_pct:.1f} % < 99 %")

    # 2. outage ------------------------------------------------------------------------------------
    upbit.add_fault(Fault.status(503, {"error": {"name": "server_error", "message": "down"}}), fraction=1.0)
    rows_before = MarketData.objects.count()
    began = time.monotonic()
    outage_runs = outage_clean = unhealthy = checks = 0
    while time.monotonic() - began < outage:
        try:
            result = jobs.run_once("collect_market_data")
            outage_runs += 1
            outage_clean += (not result.success) and bool(result.error or result.skipped)
        except Exception as error:
            outage_runs += 1
            print(f"outage: job raised {type(error).__name__}: {error}", file=sys.stderr)
        checks += 1
        unhealthy += health() == "unhealthy"
        time.sleep(0.5)
    rows_written = MarketData.objects.count() - rows_before
    upbit.clear_faults()
    figures["outage_s"] = outage
    figures["outage_jobs_failed_cleanly"] = f"{outage_clean}/{outage_runs}"
    figures["outage_health_unhealthy"] = f"{unhealthy}/{checks}"
    if outage_clean != outage_runs or unhealthy != checks or rows_written:
        failures.append(
            f"outage: {outage_clean}/{outage_runs} jobs failed cleanly, health unhealthy {unhealthy}/{checks}, "
            f"{rows_written} rows written"
        )

    # 3. ban ---------------------------------------------------------------------------------------
    upbit.add_fault(
        Fault.status(
            418, {"error": {"name": "too_many_requests", "message": "banned"}}, {"Retry-After": str(ban_seconds)}
        ),
        path="/v1/ticker",
        times=1,
    )
    requests_before = len(upbit.calls("/v1/ticker"))
    began = time.monotonic()
    ban_runs = 0
    while time.monotonic() - began < ban_seconds - 1:
        jobs.run_once("collect_market_data")
        health()
        ban_runs += 1
        time.sleep(0.2)
    during_ban = len(upbit.calls("/v1/ticker")) - requests_before
    figures["ban_requests"] = during_ban
    figures["ban_job_runs"] = ban_runs
    if during_ban > 1:
        failures.append(f"ban hammered: {during_ban} ticker requests during the ban (allowed: the first one)")
    time.sleep(max(0.0, ban_seconds - (time.monotonic() - began)) + 0.5)

    # 4. recovery ----------------------------------------------------------------------------------
    recovered = [jobs.run_once("collect_market_data").success for _ in range(5)]
    recovered_health = health()
    figures["recovery_jobs_ok"] = f"{sum(recovered)}/5"
    figures["recovery_health"] = recovered_health
    if not all(recovered) or recovered_health != "healthy":
        failures.append(f"no recovery: jobs {sum(recovered)}/5, health {recovered_health}")

    verdict = "PASS" if not failures else "FAIL"
    summary = ", ".join(f"{key}={value}" for key, value in figures.items())
    print(f"exchange_faults: {verdict}: {summary}" + (f"; missed: {'; '.join(failures)}" if failures else ""))
    common.write_json("drill_exchange_faults", {"verdict": verdict, "figures": figures, "missed": failures})
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
