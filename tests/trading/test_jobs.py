"""Job wrapper (run lock, JobMetric event), the thin task entry points and the run_job command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from structlog.testing import capture_logs

from trading import jobs
from trading.models import JobLock, MarketData
from trading.services import job_locks
from trading.services.job_runner import run_job, run_lock_name

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _metric_events(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry.get("metric_type") == "job"]


def _sample(name: str, metric: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(metric, {"job": name}) or 0.0


def test_successful_run_emits_exactly_one_metric_event_with_the_seed_fields():
    before = _sample("demo_ok", "job_duration_seconds_count")
    with capture_logs() as logs:
        result = run_job("demo_ok", lambda: 42)
    assert result.success and result.value == 42 and not result.skipped
    events = _metric_events(logs)
    assert len(events) == 1
    event = events[0]
    assert {"metric_type", "job_name", "duration_ms", "success", "error", "timestamp"} <= set(event)
    assert event["job_name"] == "demo_ok"
    assert event["success"] is True and event["error"] is None
    assert isinstance(event["duration_ms"], float) and event["duration_ms"] == round(event["duration_ms"], 2)
    assert event["timestamp"].endswith("+00:00")
    assert _sample("demo_ok", "job_duration_seconds_count") == before + 1
    # The run lock is released after the run.
    assert JobLock.objects.get(name=run_lock_name("demo_ok")).owner == ""


def test_failing_run_never_raises_logs_with_context_and_counts_a_failure():
    def boom() -> None:
        raise RuntimeError("exchange unreachable")

    failures = _sample("demo_fail", "job_failures_total")
    with capture_logs() as logs:
        result = run_job("demo_fail", boom)
    assert not result.success
    assert result.error == "RuntimeError: exchange unreachable"
    [event] = _metric_events(logs)
    assert event["success"] is False and event["error"] == "RuntimeError: exchange unreachable"
    failed = [entry for entry in logs if entry["event"] == "job.failed"]
    assert failed and failed[0]["log_level"] == "error" and failed[0]["exc_info"] is True
    assert _sample("demo_fail", "job_failures_total") == failures + 1
    assert JobLock.objects.get(name=run_lock_name("demo_fail")).owner == ""


def test_log_lines_inside_a_run_carry_job_name_and_run_id():
    import structlog

    seen: dict = {}

    def work() -> None:
        seen.update(structlog.contextvars.get_contextvars())

    result = run_job("demo_ctx", work)
    assert seen["job_name"] == "demo_ctx" and seen["run_id"] == result.run_id
    assert "job_name" not in structlog.contextvars.get_contextvars()


def test_run_while_the_job_runs_elsewhere_is_skipped_without_a_metric_event():
    holder = job_locks.acquire(run_lock_name("demo_busy"), 60)
    called = []
    with capture_logs() as logs:
        result = run_job("demo_busy", lambda: called.append(1))
    assert result.skipped and not result.success and called == []
    assert _metric_events(logs) == []
    assert any(entry["event"] == "job.skipped" for entry in logs)
    job_locks.release(run_lock_name("demo_busy"), holder)


def test_config_warm_up_is_called_when_the_config_service_offers_it(monkeypatch):
    from trading.services import config

    calls = []
    monkeypatch.setattr(config, "warm_up", lambda: calls.append(1), raising=False)
    run_job("demo_warm", lambda: None)
    assert calls == [1]


@pytest.mark.django_db(transaction=True)
def test_same_job_racing_in_two_threads_runs_exactly_once():
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []
    results = []

    def slow_work() -> None:
        runs.append(1)
        started.set()
        release.wait(10)

    def first() -> None:
        try:
            results.append(run_job("demo_race", slow_work))
        finally:
            connections.close_all()

    def second() -> None:
        try:
            started.wait(10)
            results.append(run_job("demo_race", lambda: runs.append(2)))
        finally:
            release.set()
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs == [1]
    assert sorted((r.success, r.skipped) for r in results) == [(False, True), (True, False)]


class FakeTickerExchange:
    """Just the ticker part of the Exchange interface."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        from trading.clients.exchange.base import Ticker

        self.ticker = Ticker(
            market="KRW-BTC",
            trade_price=Decimal("143250000.12345678"),
            opening_price=Decimal("142000000"),
            high_price=Decimal("144000000"),
            low_price=Decimal("141500000"),
            acc_trade_volume_24h=Decimal("2411.12345678"),
            signed_change_rate=Decimal("0.00880282"),
            timestamp=datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC),
        )

    def get_ticker(self, market: str):
        return self.ticker


def test_entry_point_collect_market_data_runs_the_service(monkeypatch):
    import trading.clients.exchange as exchange_module

    monkeypatch.setattr(exchange_module, "get_exchange", FakeTickerExchange)
    result = jobs.collect_market_data()
    assert result.success, result.error
    assert MarketData.objects.get().trade_price == Decimal("143250000.12345678")


def test_generate_trading_signal_executes_only_buy_or_sell(monkeypatch):
    import types

    from trading.models import TradingSignal

    executed = []
    for signal_type, expected in (("HOLD", []), ("BUY", ["BUY"])):
        executed.clear()
        signal = types.SimpleNamespace(pk=1, signal_type=signal_type)
        monkeypatch.setitem(
            sys.modules,
            "trading.services.signal_generation",
            types.SimpleNamespace(generate_trading_signal=lambda signal=signal: signal),
        )
        monkeypatch.setitem(
            sys.modules,
            "trading.services.order_execution",
            types.SimpleNamespace(execute_signal=lambda s: executed.append(s.signal_type)),
        )
        result = jobs.generate_trading_signal()
        assert result.success, result.error
        assert executed == expected
    assert TradingSignal.SignalType.BUY == "BUY"


def test_sync_pending_orders_calls_reconciliation(monkeypatch):
    import types

    monkeypatch.setitem(
        sys.modules,
        "trading.services.reconciliation",
        types.SimpleNamespace(reconcile_pending_orders=lambda: "summary"),
    )
    assert jobs.sync_pending_orders().value == "summary"


# --- run_job command --------------------------------------------------------------------------


def test_run_job_command_success_prints_and_returns_normally(monkeypatch, capsys):
    monkeypatch.setitem(jobs.JOB_FUNCTIONS, "cleanup_old_data", lambda: "done")
    call_command("run_job", "cleanup_old_data")
    assert "Job cleanup_old_data succeeded" in capsys.readouterr().out


def test_run_job_command_failing_job_raises_command_error(monkeypatch):
    def boom() -> None:
        raise ValueError("bad answer")

    monkeypatch.setitem(jobs.JOB_FUNCTIONS, "cleanup_old_data", boom)
    with pytest.raises(CommandError, match=r"Job cleanup_old_data failed .*ValueError: bad answer"):
        call_command("run_job", "cleanup_old_data")


def test_run_job_command_unknown_name_lists_valid_jobs():
    with pytest.raises(CommandError) as raised:
        call_command("run_job", "collect_everything")
    message = str(raised.value)
    assert "Unknown job 'collect_everything'" in message
    for name in jobs.JOB_FUNCTIONS:
        assert name in message


def test_run_job_command_while_the_job_is_running_elsewhere_fails():
    job_locks.acquire(run_lock_name("cleanup_old_data"), 60)
    with pytest.raises(CommandError, match="already running"):
        call_command("run_job", "cleanup_old_data")


def _manage(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOG_LEVEL": "warning", **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _test_database_url(settings) -> str:
    database = settings.DATABASES["default"]
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


# PostgreSQL: the subprocess must reach the test database (pytest-django's SQLite one is in memory).
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_job_real_subprocess_exit_codes(settings):
    """A real ``manage.py run_job`` against the test database: 0 on success, non-zero otherwise."""
    url = _test_database_url(settings)
    ok = _manage("run_job", "cleanup_old_data", DATABASE_URL=url)
    assert ok.returncode == 0, ok.stderr
    assert "Job cleanup_old_data succeeded" in ok.stdout

    unknown = _manage("run_job", "nope", DATABASE_URL=url)
    assert unknown.returncode != 0
    assert "Unknown job 'nope'. Valid jobs: collect_market_data" in unknown.stderr

    # A real failure: the exchange is a closed port on 127.0.0.1.
    failed = _manage(
        "run_job",
        "collect_market_data",
        DATABASE_URL=url,
        EXCHANGE="upbit",
        UPBIT_API_URL="http://127.0.0.1:9",
        UPBIT_CONNECT_TIMEOUT="0.2",
        UPBIT_READ_TIMEOUT="0.2",
    )
    assert failed.returncode != 0
    assert "Job collect_market_data failed" in failed.stderr
    assert MarketData.objects.count() == 0

    job_locks.acquire(run_lock_name("cleanup_old_data"), 60)
    busy = _manage("run_job", "cleanup_old_data", DATABASE_URL=url)
    assert busy.returncode != 0 and "already running" in busy.stderr


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_job_metric_line_per_run_through_the_real_json_logging_pipeline(settings):
    import json

    run = _manage(
        "run_job", "cleanup_old_data", DATABASE_URL=_test_database_url(settings), LOG_FORMAT="json", LOG_LEVEL="info"
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    metrics = [line for line in lines if line.get("metric_type") == "job"]
    assert len(metrics) == 1, lines
    [metric] = metrics
    assert metric["job_name"] == "cleanup_old_data" and metric["success"] is True and metric["error"] is None
    assert isinstance(metric["duration_ms"], float) and metric["timestamp"].endswith("Z")
    # Every line of the run carries the run's id.
    cleanup_lines = [line for line in lines if line.get("event") == "cleanup.market_data"]
    assert cleanup_lines and cleanup_lines[0]["run_id"] == metric["run_id"]


# --- integration with the pipeline services (paper exchange, rule-based provider) -------------


def test_pipeline_through_the_job_entry_points(monkeypatch, fake_slack):
    """collect -> BUY -> price falls -> check_volatility pauses and the stop-loss closes -> sync -> signal."""
    import trading.clients.exchange as exchange_module
    from tests.trading.order_support import make_signal, paper_exchange
    from trading.models import Order, Position, TradingSignal
    from trading.services import config
    from trading.services.order_execution import execute_signal

    exchange = paper_exchange(Decimal("100000000"))
    monkeypatch.setattr(exchange_module, "get_exchange", lambda: exchange)

    assert jobs.collect_market_data().success
    bought = execute_signal(make_signal("BUY"), exchange=exchange)
    assert bought.status == Order.Status.FILLED
    assert Position.objects.get(symbol="KRW-BTC").quantity > 0

    exchange.price_feed.price = Decimal("90000000")  # -10 %: past the 5 % stop-loss and the 3 % volatility
    assert jobs.collect_market_data().success
    result = jobs.check_volatility()
    assert result.success, result.error
    assert result.value.action == "paused" and result.value.exit_reason == "stop_loss"
    assert config.get_value("trading_paused") is True
    close = Order.objects.get(reason=Order.Reason.STOP_LOSS)
    assert close.status == Order.Status.FILLED and close.side == "ask"
    assert Position.objects.get(symbol="KRW-BTC").quantity == 0
    assert any(message.startswith("Trading paused") for message in fake_slack.messages)

    # A second check while paused: no second notification, nothing left to close.
    before = len(fake_slack.messages)
    assert jobs.check_volatility().success
    assert [m for m in fake_slack.messages[before:] if m.startswith("Trading paused")] == []
    assert Order.objects.filter(reason=Order.Reason.STOP_LOSS).count() == 1

    assert jobs.sync_pending_orders().success
    signals = TradingSignal.objects.count()
    signal_run = jobs.generate_trading_signal()
    assert signal_run.success, signal_run.error
    assert TradingSignal.objects.count() == signals + 1
