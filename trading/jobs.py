"""django-q2 task entry points: thin, one per job (names as in seed 004).

Each runs its service through ``job_runner.run_job`` (run lock, one metric
event, never raises). Services are imported lazily so a job module that is
missing or broken fails only its own job, not the cluster's import of this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trading.services.job_runner import JobResult, run_job


def _collect_market_data() -> Any:
    from trading.services.market_data import collect_market_data

    return collect_market_data()


def _check_volatility() -> Any:
    from trading.services.volatility import check_volatility

    return check_volatility()


def _generate_trading_signal() -> Any:
    """The AI signal, then the trade it calls for (risk checks live in ``execute_signal``)."""
    from trading.models import TradingSignal
    from trading.services.order_execution import execute_signal
    from trading.services.signal_generation import generate_trading_signal

    signal = generate_trading_signal()
    order = None
    if signal is not None and signal.signal_type in (TradingSignal.SignalType.BUY, TradingSignal.SignalType.SELL):
        order = execute_signal(signal)
    return {
        "signal_id": getattr(signal, "pk", None),
        "signal_type": getattr(signal, "signal_type", None),
        "order_id": getattr(order, "pk", None),
    }


def _sync_pending_orders() -> Any:
    from trading.services.reconciliation import reconcile_pending_orders

    return reconcile_pending_orders()


def _cleanup_old_data() -> Any:
    from trading.services.cleanup import cleanup_old_data

    return cleanup_old_data()


#: Job name -> the work of one run. ``run_job`` and the schedules use these names.
JOB_FUNCTIONS: dict[str, Callable[[], Any]] = {
    "collect_market_data": _collect_market_data,
    "check_volatility": _check_volatility,
    "generate_trading_signal": _generate_trading_signal,
    "sync_pending_orders": _sync_pending_orders,
    "cleanup_old_data": _cleanup_old_data,
}


def run_once(name: str) -> JobResult:
    """One run of job ``name`` (``KeyError`` for an unknown name)."""
    return run_job(name, JOB_FUNCTIONS[name])


def collect_market_data() -> JobResult:
    return run_once("collect_market_data")


def check_volatility() -> JobResult:
    return run_once("check_volatility")


def generate_trading_signal() -> JobResult:
    return run_once("generate_trading_signal")


def sync_pending_orders() -> JobResult:
    return run_once("sync_pending_orders")


def cleanup_old_data() -> JobResult:
    return run_once("cleanup_old_data")


def drive_cadence(job_name: str) -> dict[str, Any]:
    """Per-minute driver task of a 10 s / 30 s job (see ``trading/services/scheduling.py``)."""
    from trading.services.scheduling import drive

    report = drive(job_name, lambda: run_once(job_name))
    return {"job_name": job_name, "outcome": report.outcome, "slots": len(report.slots)}
