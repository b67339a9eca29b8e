"""Drill: soak — the whole system for N minutes on PostgreSQL with the fake Upbit and 20 API clients.

``make run``-style: a private database (``bench_soak``) is migrated, the
default config and the schedules are ensured (``ensure_schedules
--signal-now``), then gunicorn (2 workers) and ``manage.py qcluster`` run
with ``EXCHANGE=upbit`` against the fake Upbit (``tests/fakes/upbit.py``, in
this process, with Upbit's per-second limits switched on), while 20 API
clients (threads, token-authenticated) each read an endpoint about once a
second (once the first row is collected). Every 10 s the RSS of the web and cluster process trees and the
server connections of the database (``pg_stat_activity``) are sampled.

Bars: 0 API errors, 0 failed jobs (``job.failed`` in the logs), market data
collected (>= 80 % of one row per 10 s), 0 x 429 from the exchange, no RSS
growth (last third vs first third after warm-up: <= +10 % and <= +30 MiB)
and no growth in DB connections (last third's max <= first third's max).

    .venv/bin/python -m benchmarks.drills.soak [--minutes 10] [--quick]   # --quick: 2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import requests

from benchmarks import common

DATABASE = "bench_soak"
ENDPOINTS = (
    "/api/v1/market/latest",
    "/api/v1/market/history?hours=1",
    "/api/v1/market/stats?hours=24",
    "/api/v1/dashboard",
    "/api/v1/position",
    "/api/v1/orders",
    "/api/v1/signals",
)
CLIENTS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_rss(pid: int) -> int:
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="soak length (default 10; --quick 2)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    minutes = args.minutes or (2.0 if args.quick else 10.0)

    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeUpbit

    upbit = FakeUpbit(krw_balance=Decimal("100000000"), port=free_port())
    upbit.start()
    processes: list[subprocess.Popen] = []
    try:
        with common.bench_database(DATABASE), tempfile.TemporaryDirectory(prefix="soak-") as work:
            env = common.django_env(
                DATABASE,
                DEBUG="0",
                LOG_LEVEL="warning",
                ALLOWED_HOSTS="127.0.0.1,localhost",
                EXCHANGE="upbit",
                UPBIT_API_URL=upbit.url,
                UPBIT_ACCESS_KEY=TEST_ACCESS_KEY,
                UPBIT_SECRET_KEY=TEST_SECRET_KEY,
                SLACK_WEBHOOK_URL="",
                GEMINI_API_KEY="",
                Q_WORKERS="2",
                PROMETHEUS_MULTIPROC_DIR=str(Path(work) / "prometheus"),
            )
            Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
            for command in (["createcachetable"], ["ensure_default_config"], ["ensure_schedules", "--signal-now"]):
                subprocess.run(
                    [common.PYTHON, "manage.py", *command],
                    cwd=common.ROOT,
                    env=env,
                    check=True,
                    timeout=120,
                    capture_output=True,
                )
            token = subprocess.run(
                [
                    common.PYTHON,
                    "manage.py",
                    "shell",
                    "-c",
                    "from django.contrib.auth import get_user_model\n"
                    "from rest_framework.authtoken.models import Token\n"
                    "user, _ = get_user_model().objects.get_or_create(username='soak')\n"
                    "print(Token.objects.get_or_create(user=user)[0].key)",
                ],
                cwd=common.ROOT,
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            port = free_port()
            web_log, cluster_log = Path(work) / "web.log", Path(work) / "cluster.log"
            with web_log.open("w") as log:
                web = subprocess.Popen(
                    [
                        str(Path(common.PYTHON).with_name("gunicorn")),
                        "config.wsgi:application",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        "2",
                    ],
                    cwd=common.ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            processes.append(web)
            with cluster_log.open("w") as log:
                cluster = subprocess.Popen(
                    [common.PYTHON, "manage.py", "qcluster"],
                    cwd=common.ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            processes.append(cluster)
            return soak(minutes, port, token, web, cluster, web_log, cluster_log, upbit)
    finally:
        for process in processes:
            stop(process)
        upbit.stop()


def soak(
    minutes: float,
    port: int,
    token: str,
    web: subprocess.Popen,
    cluster: subprocess.Popen,
    web_log: Path,
    cluster_log: Path,
    upbit: object,
) -> int:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    if not common.wait_for_http(base + "/health/", web):
        print("soak: FAIL: the web server did not start")
        return 1

    # Start the load once the system is up: the first market-data row exists (before it,
    # /market/latest rightly answers 404 "no data yet").
    with common.connect(DATABASE) as db:
        while not db.execute("SELECT count(*) FROM trading_marketdata").fetchone()[0]:
            if time.monotonic() > deadline + 120 or cluster.poll() is not None:
                print("soak: FAIL: no market data within the start-up window")
                return 1
            time.sleep(1)

    stop_event = threading.Event()
    outcomes: Counter[str] = Counter()
    error_paths: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        step = index
        while not stop_event.is_set():
            path = ENDPOINTS[step % len(ENDPOINTS)]
            step += 1
            try:
                status = str(session.get(base + path, timeout=10).status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            with lock:
                outcomes[status] += 1
                if not status.startswith("2"):
                    error_paths[f"{status} {path}"] += 1
            stop_event.wait(1.0)
        session.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    samples: list[tuple[float, int, int, int]] = []  # (t, web rss, cluster rss, db connections)
    began = time.monotonic()
    with common.connect("postgres") as conn:
        while time.monotonic() - began < minutes * 60:
            count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DATABASE]).fetchone()[0]
            samples.append((time.monotonic() - began, tree_rss(web.pid), tree_rss(cluster.pid), count))
            if web.poll() is not None or cluster.poll() is not None:
                break
            time.sleep(10)
        stop_event.set()
        for thread in threads:
            thread.join(15)
        with common.connect(DATABASE) as db:
            rows = db.execute("SELECT count(*) FROM trading_marketdata").fetchone()[0]
    elapsed = time.monotonic() - began

    warm = [s for s in samples if s[0] >= min(60.0, elapsed / 4)] or samples
    third = max(1, len(warm) // 3)
    first, last = warm[:third], warm[-third:]

    def growth(index: int) -> tuple[float, float]:
        start = statistics.median(s[index] for s in first)
        end = statistics.median(s[index] for s in last)
        return start / 2**20, end / 2**20

    web_start, web_end = growth(1)
    cluster_start, cluster_end = growth(2)
    connections_first = max(s[3] for s in first)
    connections_last = max(s[3] for s in last)
    errors = sum(n for status, n in outcomes.items() if not status.startswith("2"))
    job_failures = sum(line.count('"job.failed"') for line in cluster_log.read_text().splitlines())
    rejected_429 = getattr(upbit, "rejected_429", 0)
    expected_rows = elapsed / 10
    failures = []
    if errors:
        failures.append(f"{errors} API errors {dict(error_paths)}")
    if job_failures:
        failures.append(f"{job_failures} failed jobs")
    if rows < 0.8 * expected_rows:
        failures.append(f"{rows} market-data rows < 80 % of {expected_rows:.0f}")
    if rejected_429:
        failures.append(f"{rejected_429} x 429 from the exchange")
    for name, start, end in (("web", web_start, web_end), ("cluster", cluster_start, cluster_end)):
        if end > start * 1.10 and end - start > 30:
            failures.append(f"{name} RSS grew {start:.0f} -> {end:.0f} MiB")
    if connections_last > connections_first:
        failures.append(f"DB connections grew {connections_first} -> {connections_last}")
    if web.poll() is not None or cluster.poll() is not None:
        failures.append("a process died")
    figures = {
        "minutes": round(elapsed / 60, 1),
        "api_requests": sum(outcomes.values()),
        "api_errors": errors,
        "jobs_failed": job_failures,
        "market_rows": rows,
        "exchange_429": rejected_429,
        "web_rss_mib": f"{web_start:.0f}->{web_end:.0f}",
        "cluster_rss_mib": f"{cluster_start:.0f}->{cluster_end:.0f}",
        "db_connections": f"{connections_first}->{connections_last}",
    }
    verdict = "PASS" if not failures else "FAIL"
    print(
        f"soak: {verdict}: "
        + ", ".join(f"{k}={v}" for k, v in figures.items())
        + (f"; missed: {'; '.join(failures)}" if failures else "")
    )
    if failures:
        print("cluster log tail:\n" + cluster_log.read_text()[-2000:], file=sys.stderr)
    common.write_json(
        "drill_soak",
        {
            "verdict": verdict,
            "figures": figures,
            "missed": failures,
            "statuses": dict(outcomes),
            "errors_by_path": dict(error_paths),
            "samples": [
                {"t": round(t, 1), "web_rss": w, "cluster_rss": c, "db_connections": n} for t, w, c, n in samples
            ],
        },
    )
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
