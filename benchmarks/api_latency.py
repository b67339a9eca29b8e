"""API latency at a fixed arrival rate on a month of 10 s market data, against a bare-Django floor.

What it does (traffic only to 127.0.0.1, bounded duration, about 4 minutes):

1. creates and migrates a ``bench_api_<pid>`` database (``manage.py migrate`` in a
   subprocess), seeds 31 days of 10 s samples (≈ 268,000 rows) with
   ``manage.py seed_market_data`` plus a month of signals and orders, and a
   token user;
2. starts gunicorn on a free 127.0.0.1 port (``--workers`` sync workers) with
   ``benchmarks.api_latency_settings``, whose URLconf adds FLOOR views: the
   same single query in a bare Django view returning ``JsonResponse``;
3. drives each endpoint OPEN LOOP at a fixed 20 req/s (a thread pool sends on a
   fixed schedule; latency is measured from the *scheduled* send time, so a
   slow server cannot hide its queueing — no coordinated omission). History
   and stats alternate with their floors in 10 s blocks to cancel drift;
4. measures saturation throughput with 20 closed-loop connections;
5. times stats-in-SQL (``selectors.market_stats``) against stats-in-Python
   (load the window's prices, then max/min/first/last/mean) on the same data.

Bar (DESIGN.md): at 20 req/s for 100-row pages P95 < 150 ms and P99 < 300 ms,
and p50 within 2x of the floor. Writes ``benchmarks/out/api_latency.json``.

    python -m benchmarks.api_latency [--rate 20] [--block 10] [--blocks 3] [--workers 2] [--keep-db]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

if __package__ in (None, ""):  # run as a script path: make the repository importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

# One database per run (dropped at exit), so two runs at once never drop each other's data.
DATABASE = f"bench_api_{os.getpid()}"
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 10.0
BAR_P95_MS = 150.0
BAR_P99_MS = 300.0
BAR_FLOOR_RATIO = 2.0

# (name, path, floor name or None)
PAIRED = [
    ("history", "/api/v1/market/history?hours=24&limit=100", "floor_history"),
    ("stats", "/api/v1/market/stats?hours=24", "floor_stats"),
]
FLOORS = {"floor_history": "/floor/history", "floor_stats": "/floor/stats"}
SINGLE = [
    ("latest", "/api/v1/market/latest"),
    ("signals", "/api/v1/signals?limit=50"),
    ("orders", "/api/v1/orders?limit=50"),
    ("dashboard", "/api/v1/dashboard"),
    ("history_page_2", None),  # filled with a real cursor at run time
]


# --- setup ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def seed(url: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run(
        [common.PYTHON, "manage.py", "seed_market_data", "--days", "31", "--interval", "10"],
        cwd=common.ROOT,
        env=common.django_env(DATABASE, DB_POOL_MIN="1", DB_POOL_MAX="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seed_market_data failed: {result.stderr[-2000:]}")
    seconds = time.perf_counter() - started
    common.setup_django(url, DB_POOL_MIN="1", DB_POOL_MAX="4")
    import datetime as dt
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from trading.models import MarketData, Order, TradingSignal

    now = timezone.now()
    # A signal every 30 minutes for a month, and an order for each BUY/SELL.
    signals = TradingSignal.objects.bulk_create(
        [
            TradingSignal(
                signal_type=("BUY", "SELL", "HOLD")[index % 3],
                confidence=Decimal("0.7"),
                reasoning="benchmark",
                provider="rule_based",
                model_name="rules",
                input_tokens=2500,
                output_tokens=300,
                latency_ms=40,
                created_at=now - dt.timedelta(minutes=30 * index),
            )
            for index in range(31 * 48)
        ]
    )
    Order.objects.bulk_create(
        [
            Order(
                market="KRW-BTC",
                side="bid" if signal.signal_type == "BUY" else "ask",
                ord_type="price" if signal.signal_type == "BUY" else "market",
                price=Decimal("100000"),
                status="FILLED",
                signal=signal,
                executed_volume=Decimal("0.001"),
                executed_funds=Decimal("90000"),
                created_at=signal.created_at,
            )
            for signal in signals
            if signal.signal_type != "HOLD"
        ]
    )
    user = get_user_model().objects.create_user("bench", password=None)
    token = Token.objects.create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # Django runs in autocommit here, outside any transaction
        # Flush the seed's dirty pages now, so a checkpoint does not land inside a measurement.
        cursor.execute("CHECKPOINT")
    return {
        "seed_seconds": round(seconds, 2),
        "market_rows": MarketData.objects.count(),
        "signals": len(signals),
        "orders": Order.objects.count(),
        "token": token,
    }


@contextlib.contextmanager
def gunicorn(port: int, workers: int) -> Iterator[subprocess.Popen]:
    env = common.django_env(
        DATABASE,
        DJANGO_SETTINGS_MODULE="benchmarks.api_latency_settings",
        DB_POOL_MIN="2",
        DB_POOL_MAX="8",
    )
    process = subprocess.Popen(
        [
            common.PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {process.stderr.read()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://{HOST}:{port}/floor/history", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 30 s")
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- load -----------------------------------------------------------------------------------------


class Client:
    """One keep-alive session per thread, with the token header."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Token {token}"}
        self.local = threading.local()

    def get(self, path: str) -> int:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        response = session.get(self.base + path, headers=self.headers, timeout=REQUEST_TIMEOUT)
        response.content  # noqa: B018 - read the whole body
        return response.status_code


def open_loop(client: Client, path: str, rate: float, seconds: float) -> dict[str, list]:
    """Send ``rate`` req/s on a fixed schedule; latency counts from the scheduled send time."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def fire(scheduled: float) -> None:
        try:
            status = client.get(path)
            outcome = None if status == 200 else f"HTTP {status}"
        except requests.RequestException as error:
            outcome = type(error).__name__
        elapsed = time.perf_counter() - scheduled
        with lock:
            if outcome is None:
                latencies.append(elapsed * 1000)
            else:
                errors.append(outcome)

    count = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=64) as pool:
        start = time.perf_counter() + 0.05
        for index in range(count):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(fire, scheduled)
    return {"latencies_ms": latencies, "errors": errors}


def closed_loop(client: Client, path: str, connections: int, seconds: float) -> dict[str, Any]:
    """``connections`` threads each sending back-to-back; completed requests per second."""
    stop = time.perf_counter() + seconds
    done = [0] * connections
    failed = [0] * connections

    def worker(slot: int) -> None:
        while time.perf_counter() < stop:
            try:
                ok = client.get(path) == 200
            except requests.RequestException:
                ok = False
            if ok:
                done[slot] += 1
            else:
                failed[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"requests_per_s": round(sum(done) / elapsed, 1), "errors": sum(failed), "seconds": round(elapsed, 1)}


def summary(latencies: list[float], errors: list[str], rate: float) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "rate_per_s": rate,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "p50_ms": rounded(common.percentile(latencies, 50)),
        "p95_ms": rounded(common.percentile(latencies, 95)),
        "p99_ms": rounded(common.percentile(latencies, 99)),
        "max_ms": rounded(max(latencies) if latencies else None),
    }


# --- stats in SQL vs in Python ------------------------------------------------------------------------


def stats_sql_vs_python(repetitions: int) -> dict[str, Any]:
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from trading import selectors
    from trading.models import MarketData

    results: dict[str, Any] = {}
    for hours in (24, 744):
        until = timezone.now()
        since = until - dt.timedelta(hours=hours)

        def in_sql(since: dt.datetime = since, until: dt.datetime = until) -> float:
            with common.Stopwatch() as watch:
                selectors.market_stats("KRW-BTC", since=since, until=until)
            return watch.seconds

        def in_python(since: dt.datetime = since, until: dt.datetime = until) -> float:
            with common.Stopwatch() as watch:
                prices = list(
                    MarketData.objects.filter(symbol="KRW-BTC", timestamp__gte=since, timestamp__lte=until)
                    .order_by("timestamp", "id")
                    .values_list("trade_price", flat=True)
                )
                _ = (max(prices), min(prices), prices[0], prices[-1], sum(prices, Decimal(0)) / len(prices))
            return watch.seconds

        sql = selectors.market_stats("KRW-BTC", since=since, until=until)
        prices = list(
            MarketData.objects.filter(symbol="KRW-BTC", timestamp__gte=since, timestamp__lte=until)
            .order_by("timestamp", "id")
            .values_list("trade_price", flat=True)
        )
        assert (sql["high"], sql["low"], sql["first"], sql["last"]) == (
            max(prices),
            min(prices),
            prices[0],
            prices[-1],
        ), "SQL and Python stats disagree"
        measured = common.alternate(repetitions, in_python, in_sql)
        results[f"{hours}h"] = {
            "rows": len(prices),
            "python_ms": round(measured["before"] * 1000, 2),
            "sql_ms": round(measured["after"] * 1000, 2),
            "python_over_sql": round(measured["before"] / measured["after"], 1),
        }
    return results


# --- main -----------------------------------------------------------------------------------------


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": common.machine_info(), "settings": vars(arguments).copy()}
    with common.bench_database(DATABASE, keep=arguments.keep_db) as url:
        seeded = seed(url)
        token = seeded.pop("token")
        report["data"] = seeded
        print(f"seeded {seeded}", flush=True)
        port = free_port()
        with gunicorn(port, arguments.workers):
            client = Client(f"http://{HOST}:{port}", token)
            # Warm every worker's pool and caches.
            for _ in range(20):
                for _, path, floor in PAIRED:
                    client.get(path)
                    client.get(FLOORS[floor])
            first_page = requests.get(
                f"http://{HOST}:{port}/api/v1/market/history?hours=24&limit=100",
                headers=client.headers,
                timeout=REQUEST_TIMEOUT,
            ).json()
            single = [
                (name, path or f"/api/v1/market/history?hours=24&limit=100&cursor={first_page['next_cursor']}")
                for name, path in SINGLE
            ]

            endpoints: dict[str, dict[str, Any]] = {}
            for name, path, floor in PAIRED:
                collected = {name: ([], []), floor: ([], [])}
                for block in range(arguments.blocks):
                    order = [(name, path), (floor, FLOORS[floor])]
                    if block % 2:
                        order.reverse()
                    for label, target in order:
                        measured = open_loop(client, target, arguments.rate, arguments.block)
                        collected[label][0].extend(measured["latencies_ms"])
                        collected[label][1].extend(measured["errors"])
                for label, (latencies, errors) in collected.items():
                    endpoints[label] = summary(latencies, errors, arguments.rate)
                print(f"{name}: {endpoints[name]}  floor: {endpoints[floor]}", flush=True)
            for name, path in single:
                measured = open_loop(client, path, arguments.rate, arguments.block)
                endpoints[name] = summary(measured["latencies_ms"], measured["errors"], arguments.rate)
                print(f"{name}: {endpoints[name]}", flush=True)
            report["open_loop"] = endpoints

            saturation = {}
            for name, path in (
                ("history", PAIRED[0][1]),
                ("floor_history", FLOORS["floor_history"]),
                ("stats", PAIRED[1][1]),
            ):
                saturation[name] = closed_loop(client, path, 20, arguments.saturation_seconds)
                print(f"saturation {name}: {saturation[name]}", flush=True)
            report["saturation_20_connections"] = saturation

        from django.db import OperationalError, connections

        for attempt in (1, 2):
            # A fresh connection: a long gunicorn phase may have outlived the one opened when seeding.
            connections.close_all()
            try:
                report["stats_sql_vs_python"] = stats_sql_vs_python(arguments.repetitions)
                break
            except OperationalError as error:
                report["stats_sql_vs_python"] = {"error": f"attempt {attempt}: {error}"}
        connections.close_all()

    verdict = {}
    for name, floor in (("history", "floor_history"), ("stats", "floor_stats")):
        measured, base = report["open_loop"][name], report["open_loop"][floor]
        floor_ratio = common.ratio(measured["p50_ms"], base["p50_ms"])
        verdict[name] = {
            "p95_under_150ms": measured["p95_ms"] is not None and measured["p95_ms"] < BAR_P95_MS,
            "p99_under_300ms": measured["p99_ms"] is not None and measured["p99_ms"] < BAR_P99_MS,
            "p50_over_floor_p50": None if floor_ratio is None else round(floor_ratio, 2),
            "p50_within_2x_floor": floor_ratio is not None and floor_ratio <= BAR_FLOOR_RATIO,
            "no_errors": measured["errors"] == 0,
        }
    report["verdict"] = verdict
    return report


def print_table(report: dict[str, Any]) -> None:
    print()
    print(f"{'endpoint':<16}{'rate':>6}{'n':>6}{'err':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, row in report["open_loop"].items():
        print(
            f"{name:<16}{row['rate_per_s']:>6}{row['requests']:>6}{row['errors']:>5}"
            f"{row['p50_ms']!s:>9}{row['p95_ms']!s:>9}{row['p99_ms']!s:>9}{row['max_ms']!s:>9}"
        )
    print("\nsaturation, 20 closed-loop connections:")
    for name, row in report["saturation_20_connections"].items():
        print(f"  {name:<16}{row['requests_per_s']:>8} req/s  errors {row['errors']}")
    print("\nstats in Python / stats in SQL (same rows, same figures):")
    for window, row in report["stats_sql_vs_python"].items():
        if window == "error":
            print(f"  failed: {row}")
            continue
        print(
            f"  {window:>5}: {row['rows']:>7} rows  python {row['python_ms']} ms  sql {row['sql_ms']} ms"
            f"  ratio {row['python_over_sql']}x"
        )
    print("\nverdict:")
    for name, row in report["verdict"].items():
        print(f"  {name}: {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="Fixed arrival rate, requests/s (default 20).")
    parser.add_argument("--block", type=float, default=10.0, help="Seconds per measurement block (default 10).")
    parser.add_argument("--blocks", type=int, default=3, help="Alternating blocks per endpoint/floor pair.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--repetitions", type=int, default=7, help="Alternating SQL/Python stats runs.")
    parser.add_argument("--keep-db", action="store_true", help="Keep the bench_api_<pid> database afterwards.")
    arguments = parser.parse_args()
    if not 0 < arguments.rate <= 200 or not 1 <= arguments.block <= 60 or not 1 <= arguments.blocks <= 10:
        parser.error("rate must be in (0, 200], block in [1, 60] s, blocks in [1, 10]")
    os.environ.setdefault("BENCH_LOG_LEVEL", "error")
    report = run(arguments)
    path = common.write_json("api_latency", report)
    print_table(report)
    print(f"\nwritten {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
