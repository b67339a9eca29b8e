"""Cadence check: does ``collect_market_data`` really store a row every 10 s under django-q2?

Runs the cluster exactly as ``make run`` does (``migrate``, ``ensure_default_config``,
``ensure_schedules --signal-now``, ``manage.py qcluster``) on a fresh database — by
default the embedded SQLite under ``var/bench-cadence/`` with make run's options (WAL,
IMMEDIATE transactions, 20 s busy timeout), or a fresh PostgreSQL database with
``--postgres`` — waits for the first row, lets it run for ``--duration`` seconds, and
reports the row count in that window and the gaps between consecutive rows.

Bar (issue 4): over 300 s, 30 ± 1 rows and gap p99 <= 12 s. Exit status 1 when outside it.

    .venv/bin/python benchmarks/cadence_check.py [--duration 300] [--postgres]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
STARTUP_LIMIT_S = 120


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def fetch_timestamps(env: dict[str, str], since: datetime) -> list[datetime]:
    if "CADENCE_SQLITE_PATH" in env:
        with sqlite3.connect(env["CADENCE_SQLITE_PATH"], timeout=20) as connection:
            rows = connection.execute(
                "SELECT timestamp FROM trading_marketdata WHERE timestamp >= ? ORDER BY timestamp",
                (since.replace(tzinfo=None).isoformat(sep=" "),),
            ).fetchall()
        return [datetime.fromisoformat(row[0]).replace(tzinfo=UTC) for row in rows]
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT timestamp FROM trading_marketdata WHERE timestamp >= %s ORDER BY timestamp", (since,)
        ).fetchall()
    return [row[0] for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="measured window in seconds (default 300)")
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database bench_cadence")
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", default=os.environ.get("Q_WORKERS", "4"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()

    env = {**os.environ, "DEBUG": "1", "LOG_LEVEL": "warning", "Q_WORKERS": str(options.workers)}
    env.setdefault("SECRET_KEY", "cadence-benchmark-only")
    if options.postgres:
        import psycopg

        with psycopg.connect(options.server_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute("DROP DATABASE IF EXISTS bench_cadence WITH (FORCE)")
            connection.execute("CREATE DATABASE bench_cadence")
        env["DATABASE_URL"] = options.server_url.rsplit("/", 1)[0] + "/bench_cadence"
        database = "postgresql (fresh bench_cadence)"
    else:
        directory = ROOT / "var" / "bench-cadence"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        env.pop("DATABASE_URL", None)
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.cadence_settings"
        env["CADENCE_SQLITE_PATH"] = str(directory / "db.sqlite3")
        env["PYTHONPATH"] = str(ROOT)
        database = f"sqlite (WAL) {env['CADENCE_SQLITE_PATH']}"

    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "createcachetable")
    manage(env, "ensure_default_config")
    manage(env, "ensure_schedules", "--signal-now")
    began = datetime.now(UTC) - timedelta(seconds=1)
    log_path = ROOT / "var" / "bench-cadence-cluster.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log:
        cluster = subprocess.Popen(
            [PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while not fetch_timestamps(env, began):
            if time.monotonic() > deadline or cluster.poll() is not None:
                print(f"no market data within {STARTUP_LIMIT_S} s; see {log_path}", file=sys.stderr)
                return 1
            time.sleep(1)
        first = fetch_timestamps(env, began)[0]
        startup_s = (first - began).total_seconds()
        remaining = (first + timedelta(seconds=options.duration) - datetime.now(UTC)).total_seconds()
        time.sleep(max(remaining, 0) + 2)
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.wait()

    stamps = [t for t in fetch_timestamps(env, first) if t < first + timedelta(seconds=options.duration)]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)]
    expected = options.duration / 10
    result = {
        "database": database,
        "workers": int(options.workers),
        "duration_s": options.duration,
        "startup_s": round(startup_s, 1),
        "rows": len(stamps),
        "expected_rows": expected,
        "gap_p50_s": round(percentile(gaps, 50), 3),
        "gap_p99_s": round(percentile(gaps, 99), 3),
        "gap_max_s": round(max(gaps), 3) if gaps else None,
        "gap_min_s": round(min(gaps), 3) if gaps else None,
        "locked_errors_in_log": log_path.read_text().count("database is locked"),
    }
    result["pass"] = abs(len(stamps) - expected) <= 1 and result["gap_p99_s"] <= 12
    print(json.dumps(result, indent=2))
    if options.json:
        options.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
