"""Case "market_stats": window statistics in Python (seed) vs SQL aggregation (ours).

Seed 002 §2.3 computes high/low/first/last by loading the whole history into
Python (``data = get_history(); prices = [d.price for d in data]; max(prices)``).
Ours is ``trading.selectors.market_stats`` — one aggregate statement. Both run
on 10 s samples generated with ``generate_series`` straight into
``trading_marketdata``: a month and three months (quick) or a month and a year
(``--full``, ≈ 3.15 M rows). Both paths must return the same figures.

Figures: median seconds per call (alternating, N repetitions), the ratio, and
each path's peak memory: the growth of the peak RSS of a fresh subprocess
that makes one call (so the measurement neither slows nor is polluted by the
timed calls).

    python -m benchmarks.cases.market_stats [--full] [--repetitions N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks import common

DATABASE = "bench_stats"
SYMBOL = "KRW-BTC"
SAMPLE_SECONDS = 10

GENERATE_SQL = """
INSERT INTO trading_marketdata
    (symbol, trade_price, opening_price, high_price, low_price, trade_volume, change_rate, timestamp, collected_at)
SELECT %(symbol)s,
       round((95000000 + 3000000 * sin(n / 20000.0) + random() * 200000)::numeric, 0),
       95000000, 99000000, 91000000,
       round((1000 + random() * 500)::numeric, 8),
       round(((random() - 0.5) / 50)::numeric, 8),
       %(until)s - make_interval(secs => n * %(step)s),
       %(until)s - make_interval(secs => n * %(step)s)
FROM generate_series(0, %(rows)s - 1) AS n
"""


def generate(days: int, until: dt.datetime) -> int:
    rows = days * 24 * 3600 // SAMPLE_SECONDS
    with common.connect(DATABASE) as conn:
        conn.execute(GENERATE_SQL, {"symbol": SYMBOL, "until": until, "step": SAMPLE_SECONDS, "rows": rows})
        conn.execute("VACUUM ANALYZE trading_marketdata")
    return rows


def python_stats(since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """The seed's way: load every row of the window, then compute in Python."""
    from trading.models import MarketData

    data = list(
        MarketData.objects.filter(symbol=SYMBOL, timestamp__gte=since, timestamp__lte=until).order_by("timestamp", "id")
    )
    prices = [row.trade_price for row in data]
    return {
        "samples": len(prices),
        "high": max(prices),
        "low": min(prices),
        "first": prices[0],
        "last": prices[-1],
        "average": (sum(prices) / len(prices)).quantize(Decimal("0.00000001")),
    }


def sql_stats(since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    from trading.selectors import market_stats

    return market_stats(SYMBOL, since=since, until=until)


def timed(function: Any, *args: Any) -> float:
    from django.db import connection

    began = time.perf_counter()
    function(*args)
    seconds = time.perf_counter() - began
    connection.close()
    return seconds


def peak_memory(path: str, days: int, until: dt.datetime) -> int:
    """Peak-RSS growth (bytes) of one call of ``path`` in a fresh subprocess."""
    result = common.run_python(
        [
            "-m",
            "benchmarks.cases.market_stats",
            "--memory-probe",
            path,
            "--days",
            str(days),
            "--until",
            until.isoformat(),
        ],
        env=common.django_env(DATABASE, DB_POOL_MIN="1", DB_POOL_MAX="4"),
        timeout=600,
    )
    if result["returncode"] != 0:
        raise RuntimeError(f"memory probe failed: {result['stderr_tail'][-1500:]}")
    return int(result["stdout_tail"].strip().splitlines()[-1])


def memory_probe(path: str, days: int, until: dt.datetime) -> int:
    common.setup_django()
    from django.db import connection

    connection.ensure_connection()
    since = until - dt.timedelta(days=days)
    before = high_water_rss()
    (python_stats if path == "python" else sql_stats)(since, until)
    return high_water_rss() - before


def high_water_rss() -> int:
    """Peak RSS of this process image, bytes.

    ``VmHWM`` rather than ``ru_maxrss``: after fork + exec, ``ru_maxrss`` keeps the
    parent's high-water mark, which would hide the growth of this small child.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="a month and a year of data (≈ 3.15 M rows)")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--memory-probe", choices=["python", "sql"], help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--until", type=dt.datetime.fromisoformat, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(memory_probe(args.memory_probe, args.days, args.until))
        return 0
    repetitions = args.repetitions or (5 if args.full else 3)
    windows = {"month": 30, "year": 365} if args.full else {"month": 30, "three_months": 90}
    results: dict[str, Any] = {}
    with common.bench_database(DATABASE) as url:
        until = dt.datetime.now(dt.UTC).replace(microsecond=0)
        began = time.perf_counter()
        total_rows = generate(max(windows.values()), until)
        generation_seconds = time.perf_counter() - began
        print(f"market_stats: generated {total_rows} rows in {generation_seconds:.0f} s", file=sys.stderr)
        common.setup_django(url, DB_POOL_MIN="1", DB_POOL_MAX="4")
        for label, days in windows.items():
            since = until - dt.timedelta(days=days)
            python_result, sql_result = python_stats(since, until), sql_stats(since, until)
            same = all(python_result[key] == sql_result[key] for key in ("samples", "high", "low", "first", "last"))
            timing = common.alternate(
                repetitions, lambda s=since: timed(python_stats, s, until), lambda s=since: timed(sql_stats, s, until)
            )
            results[label] = {
                "days": days,
                "rows": python_result["samples"],
                "seconds": timing,
                "same_answer": same,
                "python_peak_rss_growth_bytes": peak_memory("python", days, until),
                "sql_peak_rss_growth_bytes": peak_memory("sql", days, until),
            }
            print(
                f"market_stats {label}: python {timing['before']:.3f} s, sql {timing['after']:.3f} s, "
                f"ratio {timing['ratio']:.4f}, python peak RSS +{results[label]['python_peak_rss_growth_bytes'] / 2**20:.0f} MiB, "
                f"same answer: {same}",
                file=sys.stderr,
            )
        from django.db import connections

        connections.close_all()
    common.write_json(
        "market_stats",
        {
            "profile": "full" if args.full else "quick",
            "repetitions": repetitions,
            "before": "rows loaded into Python (seed 002 §2.3)",
            "after": "trading.selectors.market_stats (SQL aggregation)",
            "generated_rows": total_rows,
            "generation_seconds": generation_seconds,
            "windows": results,
        },
    )
    return 0 if all(r["same_answer"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
