"""Config cache benchmark (seed SC-002: hit rate >= 95 %; our bar: >= 99 %, 0 queries per read).

Run:  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/config_cache.py

Only the server part of DATABASE_URL is used: the script creates a throwaway
database ``bench_config``, migrates it, runs, and drops it. It reports:

1. the cost of one config read, cached (``trading.services.config.get_value``)
   vs uncached (the seed's "before": one ``SELECT`` per read), medians of
   several rounds, and the ratio;
2. queries per job run before (no cache: every read is a query) and after
   (row loads + generation-stamp checks + stats flushes, counted for real);
3. the hit rate over a simulated day of the job mix (8,640 market-data runs,
   2,880 volatility runs, 48 signal+execution cycles, 288 order syncs, 1
   cleanup, and operator edits made in another process), spread over
   ``Q_WORKERS`` worker processes, each simulated with its own clock-driven
   cache, stamp checks and 3600 s TTL (the clocks are injected, so a day takes
   seconds).

Prints a table and writes ``benchmarks/out/config_cache.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "config_cache.json"
DATABASE_NAME = "bench_config"
DAY_SECONDS = 86_400
WORKERS = 4

# Config reads per run, as the job code reads them today (see trading/services/*.py).
JOB_MIX: dict[str, dict[str, Any]] = {
    "market_data": {"runs": 8_640, "keys": ["signal_interval_minutes"]},
    "volatility": {
        "runs": 2_880,
        "keys": [
            "volatility_threshold_pct",
            "volatility_window_minutes",
            "trading_paused",
            "trading_pause_reason",
            "volatility_auto_resume",
            "stop_loss_pct",
            "take_profit_pct",
        ],
    },
    "signal_and_execution": {
        "runs": 48,
        "keys": [
            "ai_input_cost_krw_per_1k_tokens",
            "ai_output_cost_krw_per_1k_tokens",
            "trading_enabled",
            "trading_paused",
            "trading_pause_reason",
            "min_confidence",
            "max_position_krw",
            "order_amount_krw",
            "order_poll_timeout_s",
            "trading_enabled",
        ],
    },
    "sync_orders": {"runs": 288, "keys": ["order_poll_timeout_s", "trading_enabled"]},
    "cleanup": {"runs": 1, "keys": ["market_data_retention_days"]},
}
# Operator edits during the day (made in the web process through admin).
EDITS = [
    (3 * 3600 + 17, "min_confidence", "0.65"),
    (7 * 3600 + 2, "stop_loss_pct", "4"),
    (9 * 3600 + 45, "trading_paused", "true"),
    (9 * 3600 + 1845, "trading_paused", "false"),
    (14 * 3600 + 600, "order_amount_krw", "150000"),
    (20 * 3600 + 5, "take_profit_pct", "12"),
]


def server_database_url(name: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("benchmarks/config_cache.py needs a PostgreSQL DATABASE_URL")
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(server_database_url("postgres"), autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)


def setup_django() -> None:
    os.environ["DATABASE_URL"] = server_database_url(DATABASE_NAME)
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    os.environ["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "error")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DB_POOL_MIN", "1")
    os.environ.setdefault("DB_POOL_MAX", "4")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    call_command("createcachetable", verbosity=0)


# ------------------------------------------------------------------------------ 1. read cost


def read_uncached(key: str) -> Any:
    """The seed's "before": every read is a SELECT (what the interim service did)."""
    from trading.config_schema import get_definition
    from trading.models import SystemConfig

    definition = get_definition(key)
    row = SystemConfig.objects.filter(key=key).only("value").first()
    return definition.default if row is None else definition.parse(row.value)


def per_read_ns(reader: Any, keys: list[str], reads: int, rounds: int) -> list[float]:
    results = []
    for _ in range(rounds):
        started = time.perf_counter_ns()
        for index in range(reads):
            reader(keys[index % len(keys)])
        results.append((time.perf_counter_ns() - started) / reads)
    return results


def measure_read_cost() -> dict[str, Any]:
    from trading.config_schema import DEFINITIONS
    from trading.services import config as config_service
    from trading.services import shared_store

    keys = list(DEFINITIONS)
    config_service.warm_up()
    cached = per_read_ns(config_service.get_value, keys, reads=20_000, rounds=9)
    uncached = per_read_ns(read_uncached, keys, reads=500, rounds=9)
    stamp = []
    for _ in range(9):
        started = time.perf_counter_ns()
        for _ in range(200):
            shared_store.call(lambda cache: cache.get(config_service.GENERATION_KEY))
        stamp.append((time.perf_counter_ns() - started) / 200)
    cached_median, uncached_median = statistics.median(cached), statistics.median(uncached)
    return {
        "cached_ns_per_read": round(cached_median),
        "uncached_ns_per_read": round(uncached_median),
        "speedup_uncached_over_cached": round(uncached_median / cached_median, 1),
        "stamp_check_ns": round(statistics.median(stamp)),
        "rounds": {"cached": [round(value) for value in cached], "uncached": [round(value) for value in uncached]},
    }


# ------------------------------------------------------------------------------ 2/3. simulated day


class SimulatedClock:
    """One clock for the config service (monotonic), cache stats, and the locmem TTLs (wall)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now


class QueryCounter:
    def __init__(self) -> None:
        self.counts = {"config_rows": 0, "stamp": 0, "stats_flush": 0, "other": 0}

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        text = f"{sql} {params}"
        if "trading_systemconfig" in sql:
            self.counts["config_rows"] += 1
        elif "config:generation" in text:
            self.counts["stamp"] += 1
        elif "cache_stats" in text or "django_shared_cache" in sql:
            self.counts["stats_flush"] += 1
        else:
            self.counts["other"] += 1
        return execute(sql, params, many, context)

    def total(self) -> int:
        return sum(self.counts.values())


def schedule() -> list[tuple[float, str]]:
    """Every job run of the day, in time order."""
    runs: list[tuple[float, str]] = []
    for job, spec in JOB_MIX.items():
        interval = DAY_SECONDS / spec["runs"]
        offset = {"market_data": 0.2, "volatility": 0.7, "signal_and_execution": 61.3, "sync_orders": 33.1}.get(
            job, 4 * 3600
        )
        runs.extend(((offset + index * interval) % DAY_SECONDS, job) for index in range(spec["runs"]))
    return sorted(runs)


@contextlib.contextmanager
def simulated_time(clock: SimulatedClock) -> Any:
    import django.core.cache.backends.base as base_backend
    import django.core.cache.backends.locmem as locmem_backend

    from trading.services import cache_stats
    from trading.services import config as config_service

    saved = (config_service.clock, cache_stats.clock, base_backend.time, locmem_backend.time)
    config_service.clock = cache_stats.clock = clock
    base_backend.time = locmem_backend.time = clock
    try:
        yield
    finally:
        config_service.clock, cache_stats.clock, base_backend.time, locmem_backend.time = saved


def start_fresh_process() -> None:
    """What a newly started worker process has: no cache, no generation seen, no counters."""
    from django.core.cache import caches

    from trading.services import cache_stats
    from trading.services import config as config_service

    caches["config"].clear()
    config_service._state.seen_generation = config_service._MISSING
    config_service._state.last_check_at = float("-inf")
    cache_stats.reset()


def reset_edited_rows() -> None:
    from trading.config_schema import DEFINITIONS, to_text
    from trading.models import SystemConfig

    for _, key, _ in EDITS:
        SystemConfig.objects.filter(key=key).update(value=to_text(DEFINITIONS[key].default))


def simulate_day() -> dict[str, Any]:
    from django.db import connection

    from trading.models import SystemConfig
    from trading.services import cache_stats
    from trading.services import config as config_service

    runs = schedule()
    assignment = random.Random(7)
    per_worker = {worker: [] for worker in range(WORKERS)}
    for moment, job in runs:
        per_worker[assignment.randrange(WORKERS)].append((moment, job))

    totals = {"hits": 0, "misses": 0, "reads": 0}
    queries_by_job = {job: QueryCounter() for job in JOB_MIX}
    runs_by_job = dict.fromkeys(JOB_MIX, 0)
    for worker_runs in per_worker.values():
        reset_edited_rows()
        clock = SimulatedClock()
        with simulated_time(clock):
            start_fresh_process()
            events = [(moment, "job", job) for moment, job in worker_runs]
            events += [(moment, "edit", (key, value)) for moment, key, value in EDITS]
            for moment, kind, payload in sorted(events, key=lambda event: event[0]):
                clock.now = moment
                if kind == "edit":
                    # the web process commits the row and bumps the stamp; this worker is not told
                    key, value = payload
                    SystemConfig.objects.filter(key=key).update(value=value)
                    config_service.bump_generation()
                    continue
                runs_by_job[payload] += 1
                with connection.execute_wrapper(queries_by_job[payload]):
                    config_service.warm_up()  # as trading/services/job_runner.py does at every job start
                    for key in JOB_MIX[payload]["keys"]:
                        config_service.get_value(key)
                        totals["reads"] += 1
            counts = cache_stats.process_counts("config")
            totals["hits"] += counts["hits"]
            totals["misses"] += counts["misses"]
        start_fresh_process()

    per_job = {}
    for job, counter in queries_by_job.items():
        reads_per_run = len(JOB_MIX[job]["keys"])
        per_job[job] = {
            "runs": runs_by_job[job],
            "config_reads_per_run": reads_per_run,
            "queries_per_run_before": reads_per_run,
            "queries_per_run_after": round(counter.total() / runs_by_job[job], 3),
            "config_queries_per_run_after": round(
                (counter.counts["config_rows"] + counter.counts["stamp"]) / runs_by_job[job], 3
            ),
            "after_breakdown_per_run": {
                name: round(count / runs_by_job[job], 3) for name, count in counter.counts.items()
            },
        }
    reads_total = totals["reads"]
    all_after = sum(counter.total() for counter in queries_by_job.values())
    return {
        "workers": WORKERS,
        "edits": len(EDITS),
        "config_reads": reads_total,
        "hits": totals["hits"],
        "misses": totals["misses"],
        "hit_rate_pct": round(totals["hits"] / (totals["hits"] + totals["misses"]) * 100, 3),
        "queries_per_day_before": reads_total,
        "queries_per_day_after": all_after,
        "row_loads_per_day_after": sum(counter.counts["config_rows"] for counter in queries_by_job.values()),
        "stamp_checks_per_day_after": sum(counter.counts["stamp"] for counter in queries_by_job.values()),
        "stats_queries_per_day_after": sum(counter.counts["stats_flush"] for counter in queries_by_job.values()),
        "per_job": per_job,
    }


def measure_before_cycle_queries() -> dict[str, int]:
    """Count, for real, what one run of each job costs when every read goes to the database."""
    from django.db import connection

    result = {}
    for job, spec in JOB_MIX.items():
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            for key in spec["keys"]:
                read_uncached(key)
        result[job] = counter.total()
    return result


def main() -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{DATABASE_NAME}"')
    try:
        setup_django()
        read_cost = measure_read_cost()
        before_measured = measure_before_cycle_queries()
        day = simulate_day()
        for job, measured in before_measured.items():
            day["per_job"][job]["queries_per_run_before_measured"] = measured
        from django.conf import settings
        from django.db import connections

        report = {
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "database": "PostgreSQL",
            "shared_cache_backend": settings.CACHES["shared"]["BACKEND"].rsplit(".", 1)[-1],
            "sync_interval_s": settings.CONFIG_CACHE_SYNC_INTERVAL,
            "ttl_s": settings.CONFIG_CACHE_TTL,
            "read_cost": read_cost,
            "simulated_day": day,
            "targets": {"seed_hit_rate_pct": 95, "our_hit_rate_pct": 99},
        }
        connections.close_all()
    finally:
        with contextlib.suppress(Exception):
            admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)')
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten {OUT.relative_to(ROOT)}")


def print_table(report: dict[str, Any]) -> None:
    cost, day = report["read_cost"], report["simulated_day"]
    print(f"Config cache on PostgreSQL (shared store: {report['shared_cache_backend']})")
    print(f"  read, cached   (median) {cost['cached_ns_per_read'] / 1000:10.2f} µs")
    print(f"  read, uncached (median) {cost['uncached_ns_per_read'] / 1000:10.2f} µs")
    print(f"  uncached / cached       {cost['speedup_uncached_over_cached']:10.1f} x")
    print(
        f"  one stamp check         {cost['stamp_check_ns'] / 1000:10.2f} µs (at most every {report['sync_interval_s']} s)"
    )
    print()
    print("  queries per job run: before = every read is a SELECT; after = row loads + stamp checks")
    print("  (+ stats publishing, at most one cache write per 30 s per process, shown apart)")
    print(
        f"  {'job':22} {'runs/day':>9} {'reads/run':>9} {'before':>8} {'after':>8}"
        f" {'rows':>7} {'stamp':>7} {'stats':>7}"
    )
    for job, row in day["per_job"].items():
        breakdown = row["after_breakdown_per_run"]
        print(
            f"  {job:22} {row['runs']:9d} {row['config_reads_per_run']:9d} {row['queries_per_run_before']:8d}"
            f" {row['config_queries_per_run_after']:8.3f} {breakdown['config_rows']:7.3f}"
            f" {breakdown['stamp']:7.3f} {breakdown['stats_flush']:7.3f}"
        )
    print()
    print(
        f"  simulated day over {day['workers']} worker processes, {day['edits']} operator edits:"
        f" {day['config_reads']} reads, {day['hits']} hits, {day['misses']} misses,"
        f" hit rate {day['hit_rate_pct']} % (seed >= 95 %, our bar >= 99 %)"
    )
    print(
        f"  config queries/day: before {day['queries_per_day_before']},"
        f" after {day['row_loads_per_day_after'] + day['stamp_checks_per_day_after']}"
        f" ({day['row_loads_per_day_after']} row loads + {day['stamp_checks_per_day_after']} stamp checks);"
        f" stats publishing {day['stats_queries_per_day_after']}"
    )


if __name__ == "__main__":
    main()
