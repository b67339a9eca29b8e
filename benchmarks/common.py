"""Shared helpers for the benchmarks and drills.

Why: every case needs the same few things — a private PostgreSQL database that
is migrated exactly like production (``manage.py migrate`` in a subprocess with
``DATABASE_URL``) and always dropped afterwards, Django set up inside a case
subprocess, percentiles, and one JSON file per case under ``benchmarks/out/``.

Absolute times on a shared 2-core machine are noise; the cases report medians
of alternating before/after repetitions and the after/before ratio.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "benchmarks" / "out"
CHART_DIR = ROOT / "benchmarks" / "charts"
PYTHON = sys.executable
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"


# --- databases ------------------------------------------------------------------------------------


def server_url() -> str:
    """The PostgreSQL server the benchmarks use (``BENCH_DATABASE_URL``, else the local one).

    Only the server part is used; each case creates its own ``bench_*`` database on it.
    """
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL


def database_url(name: str, base: str | None = None) -> str:
    """``base`` with its database name replaced by ``name``."""
    parts = urlsplit(base or server_url())
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def connect(name: str = "postgres", *, autocommit: bool = True, base: str | None = None) -> Any:
    """A plain psycopg connection (no Django) to database ``name``."""
    import psycopg

    return psycopg.connect(database_url(name, base), autocommit=autocommit, connect_timeout=5)


def _check_bench_name(name: str) -> None:
    if not name.startswith("bench_") or not name.replace("_", "").isalnum():
        raise ValueError(f"benchmark databases are named bench_<word>, got {name!r}")


def drop_database(name: str, base: str | None = None) -> None:
    _check_bench_name(name)
    with connect("postgres", base=base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(name: str, *, template: str | None = None, base: str | None = None) -> None:
    """(Re)create an empty database, or a copy of ``template``."""
    _check_bench_name(name)
    drop_database(name, base)
    with connect("postgres", base=base) as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')


def django_env(name: str | None = None, base: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a Django subprocess against database ``name`` (quiet logs, pool sized small)."""
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", "benchmark-only-secret-key")
    env.setdefault("DEBUG", "0")
    env["LOG_LEVEL"] = env.get("BENCH_LOG_LEVEL", "error")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if name is not None:
        env["DATABASE_URL"] = database_url(name, base)
    env.update(extra)
    return env


def migrate(name: str, base: str | None = None, timeout: float = 300) -> None:
    """Apply every migration with ``manage.py migrate`` in a subprocess, as deployment does."""
    result = subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=django_env(name, base, DB_POOL_MIN="1", DB_POOL_MAX="4"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"migrate {name} failed: {result.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def bench_database(name: str, *, migrated: bool = True, keep: bool = False) -> Iterator[str]:
    """A fresh (migrated) database, dropped on exit even when the case fails. Yields its URL."""
    create_database(name)
    try:
        if migrated:
            migrate(name)
        yield database_url(name)
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                drop_database(name)


def setup_django(url: str | None = None, **extra_env: str) -> None:
    """Configure Django in this (case) process. Must run before any model import."""
    for key, value in django_env(None, **extra_env).items():
        os.environ.setdefault(key, value)
    os.environ["LOG_LEVEL"] = os.environ.get("BENCH_LOG_LEVEL", "error")
    if url:
        os.environ["DATABASE_URL"] = url
    for key, value in extra_env.items():
        os.environ[key] = value
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


# --- statistics -----------------------------------------------------------------------------------


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 60) -> bool:
    """True once ``url`` answers below 500; False if ``process`` exits or ``timeout`` passes first."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code < 500:
                return True
        if time.monotonic() > deadline or process.poll() is not None:
            return False
        time.sleep(0.5)


def median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100) — what a latency SLO means."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(after: float | None, before: float | None) -> float | None:
    """after / before (``None`` when either side is missing or before is 0)."""
    if after is None or before in (None, 0):
        return None
    return after / before


def summarize(before: Sequence[float], after: Sequence[float]) -> dict[str, Any]:
    """Medians of both sides and the after/before ratio of the medians."""
    b, a = median(before), median(after)
    return {"before_runs": list(before), "after_runs": list(after), "before": b, "after": a, "ratio": ratio(a, b)}


def alternate(repetitions: int, before: Callable[[], float], after: Callable[[], float]) -> dict[str, Any]:
    """Run before, after, before, after, … (order flipped every other round, to cancel drift)."""
    before_runs: list[float] = []
    after_runs: list[float] = []
    for round_number in range(repetitions):
        steps = [(before, before_runs), (after, after_runs)]
        if round_number % 2:
            steps.reverse()
        for function, runs in steps:
            runs.append(function())
    return summarize(before_runs, after_runs)


class Stopwatch:
    """``with Stopwatch() as watch: ...; watch.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


# --- output ---------------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    try:
        from decimal import Decimal

        if isinstance(value, Decimal):
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/out/<name>.json`` (pretty, stable key order) and return its path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    payload = {"name": name, "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **data}
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_default) + "\n")
    return path


def read_json(name: str) -> dict[str, Any] | None:
    path = OUT_DIR / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def run_python(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float) -> dict[str, Any]:
    """Run ``python <args>`` from the repository root; never raises, returns what happened."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [PYTHON, *args], cwd=ROOT, env=env or django_env(), capture_output=True, text=True, timeout=timeout
        )
        return {
            "returncode": result.returncode,
            "seconds": round(time.perf_counter() - started, 1),
            "stdout_tail": result.stdout[-3000:],
            "stderr_tail": result.stderr[-3000:],
        }
    except subprocess.TimeoutExpired as error:
        return {
            "returncode": None,
            "seconds": round(time.perf_counter() - started, 1),
            "stdout_tail": (error.stdout or b"")[-3000:].decode("utf-8", "replace")
            if isinstance(error.stdout, bytes)
            else str(error.stdout or "")[-3000:],
            "stderr_tail": f"timed out after {timeout:.0f} s",
        }


# --- the machine ----------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and the versions that matter, for the report header."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["distribution"] = line.split("=", 1)[1].strip('"')
    from importlib import metadata

    for package in ("Django", "psycopg", "psycopg-pool", "django-q2", "djangorestframework", "gunicorn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            info[package.lower()] = metadata.version(package)
    with contextlib.suppress(Exception), connect("postgres") as conn:
        info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    return info
