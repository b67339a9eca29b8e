"""Case "pool": connection-per-operation and the seed's small pool vs the 10/20 native pool.

Seed 001/002: the old pool was 5 (+10 overflow) and the plan raises it to
10/20, predicting "동시성 100% 개선". Here 15 and 30 threads run short job-mix
transactions (read a config row, insert a market-data row, read the latest
rows, read open orders) as fast as they can, each closing its connection after
every operation as a request or task does. Every configuration runs in its own
subprocess (pool settings are per process):

- ``no_pool``   — ``DB_POOL_DISABLED=1``: a new PostgreSQL connection per operation;
- ``pool_5_10`` — the seed's old size (issue 8 "pool 5/10");
- ``pool_10_20`` — ours.

Figures: operations/s, errors (pool timeouts etc.), p95 operation latency, and
the peak number of server backends (``pg_stat_activity``) of the run.

    python -m benchmarks.cases.pool [--full] [--repetitions N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

from benchmarks import common

DATABASE = "bench_pool"
CONFIGS = {
    "no_pool": {"DB_POOL_DISABLED": "1"},
    "pool_5_10": {"DB_POOL_MIN": "5", "DB_POOL_MAX": "10"},
    "pool_10_20": {"DB_POOL_MIN": "10", "DB_POOL_MAX": "20"},
}
BEFORE = ("no_pool", "pool_5_10")
AFTER = "pool_10_20"
CONCURRENCY = (15, 30)


def worker(threads: int, seconds: float) -> dict[str, Any]:
    """Runs inside the per-configuration subprocess: N threads of job-mix transactions."""
    common.setup_django(DB_POOL_TIMEOUT="10")
    import psycopg
    from django.db import connection, connections, transaction
    from django.utils import timezone

    from trading.models import MarketData, Order, SystemConfig

    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)
    peak = {"backends": 0}
    sampling = threading.Event()

    def one_operation() -> None:
        with transaction.atomic():
            SystemConfig.objects.filter(key="trading_enabled").values_list("value", flat=True).first()
            price = Decimal("95000000")
            MarketData.objects.create(
                symbol="KRW-BTC",
                trade_price=price,
                opening_price=price,
                high_price=price,
                low_price=price,
                trade_volume=Decimal("1234.5"),
                change_rate=Decimal("0.001"),
                timestamp=timezone.now(),
            )
            list(MarketData.objects.filter(symbol="KRW-BTC").order_by("-timestamp")[:10].values("trade_price"))
            list(Order.objects.filter(status__in=Order.OPEN_STATUSES).values("id")[:20])

    def run(index: int) -> None:
        start.wait()
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                one_operation()
                latencies[index].append(time.perf_counter() - began)
            except Exception as error:  # counted, the run goes on
                with lock:
                    errors[type(error).__name__] += 1
            finally:
                connection.close()  # back to the pool, or disconnected without one

    def sample() -> None:
        url = common.database_url(DATABASE)
        with psycopg.connect(url, autocommit=True) as conn:
            while not sampling.is_set():
                count = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [DATABASE],
                ).fetchone()[0]
                peak["backends"] = max(peak["backends"], count)
                sampling.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    sampling.set()
    sampler.join(2)
    connections.close_all()
    flat = [value for per_thread in latencies for value in per_thread]
    return {
        "threads": threads,
        "seconds": elapsed,
        "operations": len(flat),
        "ops_per_s": len(flat) / elapsed,
        "errors": sum(errors.values()),
        "error_types": dict(errors),
        "p50_ms": (common.percentile(flat, 50) or 0) * 1000,
        "p95_ms": (common.percentile(flat, 95) or 0) * 1000,
        "peak_backends": peak["backends"],
    }


def run_config(config: str, threads: int, seconds: float) -> dict[str, Any]:
    env = common.django_env(DATABASE, **CONFIGS[config])
    result = common.run_python(
        ["-m", "benchmarks.cases.pool", "--worker", "--threads", str(threads), "--seconds", str(seconds)],
        env=env,
        timeout=seconds + 120,
    )
    if result["returncode"] != 0:
        raise RuntimeError(f"pool worker {config}/{threads} failed: {result['stderr_tail'][-1500:]}")
    return json.loads(result["stdout_tail"].strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="longer runs and more repetitions")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=15, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.threads, args.seconds or 5)))
        return 0
    repetitions = args.repetitions or (5 if args.full else 3)
    seconds = args.seconds or (15.0 if args.full else 5.0)
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {c: {n: [] for n in CONCURRENCY} for c in CONFIGS}
    with common.bench_database(DATABASE):
        order = list(CONFIGS)
        for repetition in range(repetitions):
            # Alternate the order of the configurations every repetition.
            for config in order if repetition % 2 == 0 else list(reversed(order)):
                for threads in CONCURRENCY:
                    result = run_config(config, threads, seconds)
                    runs[config][threads].append(result)
                    print(
                        f"pool {config:<10} {threads:>2} threads: {result['ops_per_s']:7.1f} ops/s, "
                        f"{result['errors']} errors, p95 {result['p95_ms']:.1f} ms, "
                        f"{result['peak_backends']} backends",
                        file=sys.stderr,
                    )
    summary: dict[str, Any] = {}
    for threads in CONCURRENCY:
        medians = {
            config: {
                "ops_per_s": common.median([r["ops_per_s"] for r in runs[config][threads]]),
                "errors": sum(r["errors"] for r in runs[config][threads]),
                "p95_ms": common.median([r["p95_ms"] for r in runs[config][threads]]),
                "peak_backends": max(r["peak_backends"] for r in runs[config][threads]),
            }
            for config in CONFIGS
        }
        summary[str(threads)] = {
            "medians": medians,
            "throughput_ratio_vs": {
                before: common.ratio(medians[AFTER]["ops_per_s"], medians[before]["ops_per_s"]) for before in BEFORE
            },
        }
    common.write_json(
        "pool",
        {
            "profile": "full" if args.full else "quick",
            "repetitions": repetitions,
            "seconds_per_run": seconds,
            "before": list(BEFORE),
            "after": AFTER,
            "summary": summary,
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
