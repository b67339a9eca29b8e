"""Drill: PostgreSQL restarts mid-run — the pool recovers within 5 s, jobs resume, no order lost or duplicated.

Restarting the shared server would disrupt everyone else on the machine, so
this drill starts its OWN throwaway cluster (``initdb``/``pg_ctl`` under
``var/pgdrill`` on port 55433, loopback only; as root through ``runuser -u
postgres``), migrates a database on it, and runs the real jobs against it from
this process with the native pool (10/20): market-data collection every 0.2 s
and, every 5th tick, a BUY or SELL signal executed on the paper exchange (its
book lives in the same database) — while ``pg_ctl restart -m fast`` runs.

Figures: seconds from the end of the restart to the first successful job
(bar: <= 5 s), jobs ok before/after, failed jobs during the restart (expected,
they must fail cleanly), and orders checked against the paper exchange's book
after reconciliation: 0 lost, 0 duplicated. The cluster is stopped at the end,
also on failure.

    .venv/bin/python -m benchmarks.drills.db_restart [--before 4] [--after 10]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks import common

PORT = 55433
DATA = common.ROOT / "var" / "pgdrill"
DATABASE = "bench_restart"
BASE_URL = f"postgres://postgres@127.0.0.1:{PORT}/postgres"


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1]
    found = shutil.which("pg_ctl")
    if not found:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(found).parent


def as_owner(*command: str) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, check=True)


def pg_ctl(action: str) -> None:
    options = f"-p {PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=100"
    as_owner(
        str(pg_bin() / "pg_ctl"),
        "-D",
        str(DATA),
        "-o",
        options,
        "-l",
        str(DATA / "server.log"),
        "-m",
        "fast",
        "-w",
        action,
    )


def start_cluster() -> None:
    if not (DATA / "PG_VERSION").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(DATA, "postgres")
        as_owner(str(pg_bin() / "initdb"), "-D", str(DATA), "-U", "postgres", "-A", "trust")
    pg_ctl("start")


def stop_cluster() -> None:
    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl("stop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=float, default=4.0, help="seconds of jobs before the restart")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of jobs after the restart")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    start_cluster()
    try:
        common.create_database(DATABASE, base=BASE_URL)
        common.migrate(DATABASE, base=BASE_URL)
        return drill(args)
    finally:
        stop_cluster()


def drill(args: argparse.Namespace) -> int:
    common.setup_django(
        common.database_url(DATABASE, BASE_URL),
        DB_POOL_MIN="10",
        DB_POOL_MAX="20",
        DB_POOL_TIMEOUT="5",
        EXCHANGE="paper",
    )
    if not args.verbose:
        logging.disable(logging.CRITICAL)
    from django.db import connection, connections

    from paper_exchange.models import PaperOrder
    from trading import jobs
    from trading.models import Order, TradingSignal
    from trading.services import config as config_service
    from trading.services.order_execution import execute_signal
    from trading.services.reconciliation import reconcile_pending_orders

    for key, value in {"min_confidence": "0.1", "trading_enabled": "true"}.items():
        try:
            config_service.set_value(key, value)
        except Exception as error:
            print(f"note: could not set {key}: {error}", file=sys.stderr)
    connection.close()  # back to the pool, as at the end of a request or task

    events: list[tuple[float, str, bool]] = []  # (monotonic time, kind, ok)
    stop = threading.Event()
    executions = Counter()

    notes: list[str] = []
    began = time.monotonic()

    def loop() -> None:
        tick = 0
        while not stop.is_set():
            tick += 1
            try:
                result = jobs.run_once("collect_market_data")
                kind = "collect" if result.success else ("collect skipped" if result.skipped else "collect failed")
                events.append((time.monotonic(), kind, bool(result.success)))
                if not result.success:
                    notes.append(f"{time.monotonic() - began:.1f}s: {kind}: {(result.error or '')[:120]}")
            except Exception as error:
                events.append((time.monotonic(), "collect raised", False))
                notes.append(f"{time.monotonic() - began:.1f}s: collect raised {type(error).__name__}: {error}"[:160])
            if tick % 5 == 0:
                try:
                    signal = TradingSignal.objects.create(
                        signal_type="BUY" if tick % 10 else "SELL",
                        confidence=Decimal("0.95"),
                        provider="drill",
                        model_name="drill",
                    )
                    order = execute_signal(signal)
                    executions[str(order.status) if order is not None else "not placed"] += 1
                    events.append((time.monotonic(), "execute", True))
                except Exception as error:
                    executions[f"raised {type(error).__name__}"] += 1
                    events.append((time.monotonic(), "execute", False))
            connection.close()
            stop.wait(0.2)

    thread = threading.Thread(target=loop, name="drill-jobs")
    thread.start()
    try:
        time.sleep(args.before)
        restart_began = time.monotonic()
        pg_ctl("restart")
        restart_done = time.monotonic()
        notes.append(f"{restart_began - began:.1f}s-{restart_done - began:.1f}s: pg_ctl restart")
        time.sleep(args.after)
    finally:
        stop.set()
        thread.join(60)
    ok_before = sum(1 for t, _, ok in events if t < restart_began and ok)
    failed_during = sum(1 for t, _, ok in events if t >= restart_began and not ok)
    first_ok_after = next((t for t, _, ok in events if t >= restart_done and ok), None)
    ok_after = sum(1 for t, _, ok in events if t >= restart_done and ok)
    recovery_s = None if first_ok_after is None else round(first_ok_after - restart_done, 2)

    for _ in range(2):
        reconcile_pending_orders(pending_grace=timedelta(0))
        connection.close()
    rows = {o.identifier: o for o in Order.objects.all()}
    book = {p.identifier: p for p in PaperOrder.objects.all()}
    lost = sum(1 for identifier in book if identifier not in rows)
    open_rows = sum(1 for o in rows.values() if o.status in Order.OPEN_STATUSES)
    live_per_signal = Counter(o.signal_id for o in rows.values() if o.status != Order.Status.FAILED)
    duplicated = sum(n - 1 for n in live_per_signal.values() if n > 1)
    failed_rows_on_exchange = sum(1 for o in rows.values() if o.status == Order.Status.FAILED and o.identifier in book)
    connections.close_all()

    failures = []
    if recovery_s is None or recovery_s > 5:
        failures.append(f"pool recovery {recovery_s} s > 5 s")
    if ok_after == 0:
        failures.append("jobs did not resume")
    if lost or open_rows or failed_rows_on_exchange:
        failures.append(f"orders lost: {lost} unknown, {open_rows} open, {failed_rows_on_exchange} FAILED but placed")
    if duplicated:
        failures.append(f"{duplicated} duplicated orders")
    figures = {
        "restart_s": round(restart_done - restart_began, 2),
        "recovery_s": recovery_s,
        "jobs_ok_before": ok_before,
        "jobs_failed_during_restart": failed_during,
        "jobs_ok_after": ok_after,
        "executions": dict(executions),
        "exchange_orders": len(book),
        "lost": lost + open_rows + failed_rows_on_exchange,
        "duplicated": duplicated,
    }
    verdict = "PASS" if not failures else "FAIL"
    print(
        f"db_restart: {verdict}: "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
        + (f"; missed: {'; '.join(failures)}" if failures else "")
    )
    common.write_json(
        "drill_db_restart", {"verdict": verdict, "figures": figures, "missed": failures, "notes": notes[:40]}
    )
    if failures:
        print("\n".join(notes[:20]), file=sys.stderr)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
