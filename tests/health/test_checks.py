"""Each health check: healthy / warning / unhealthy paths, messages masked."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from health import checks
from health.runner import HEALTHY, UNHEALTHY, WARNING, evaluate
from tests.health.conftest import make_schedules
from trading.clients.ai.base import ProviderStatus, QuotaExhaustedError, TransientProviderError
from trading.clients.exchange.errors import RateLimitedError, TransientExchangeError

pytestmark = pytest.mark.django_db


def test_check_classes_are_django_health_check_plugins_named_after_their_component():
    from health_check.base import HealthCheck

    names = [check.component for check in checks.HEALTH_CHECKS]
    assert names == ["database", "upbit_api", "gemini_api", "scheduler", "recent_signal", "recent_order"]
    assert all(issubclass(check, HealthCheck) for check in checks.HEALTH_CHECKS)
    assert repr(checks.DatabaseCheck()) == "database"


# --- database -----------------------------------------------------------------------------


def test_database_healthy():
    result = evaluate(checks.DatabaseCheck())
    assert result.status == HEALTHY
    assert "SELECT 1" in result.message


@pytest.mark.django_db(transaction=True)
def test_database_check_in_a_thread_gives_its_connection_back():
    import threading

    seen = {}

    def run() -> None:
        evaluate(checks.DatabaseCheck())
        seen["open"] = connections["default"].connection is not None

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == {"open": False}


def test_database_unhealthy_when_the_query_fails(monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise ConnectionError("connection to postgres://trader:hunter2-pass@db:5432/trader refused")

        def __exit__(self, *args):
            return False

    monkeypatch.setattr(connections["default"], "cursor", lambda: BrokenCursor())
    result = evaluate(checks.DatabaseCheck())
    assert result.status == UNHEALTHY
    assert "refused" in result.message
    assert "hunter2-pass" not in result.message


# --- upbit_api ----------------------------------------------------------------------------


def test_exchange_healthy_when_the_ticker_answers(exchange_double):
    result = evaluate(checks.ExchangeCheck())
    assert result.status == HEALTHY
    assert exchange_double.calls == ["KRW-BTC"]
    assert exchange_double.closed


def test_paper_exchange_is_healthy_and_says_so(exchange_double):
    exchange_double.name = "paper"
    result = evaluate(checks.ExchangeCheck())
    assert (result.status, result.message) == (HEALTHY, "paper exchange (offline)")
    assert exchange_double.calls == []


def test_exchange_rate_limited_is_a_warning(exchange_double):
    exchange_double.error = RateLimitedError("too many requests", retry_after=1.0, status=429)
    result = evaluate(checks.ExchangeCheck())
    assert result.status == WARNING
    assert "rate limited" in result.message


def test_exchange_error_is_unhealthy_and_masked(exchange_double):
    exchange_double.error = TransientExchangeError(
        "503 from https://api.upbit.com/v1/ticker Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJhY2Nlc3Nfa2V5IjoiYSJ9.c2ln"
    )
    result = evaluate(checks.ExchangeCheck())
    assert result.status == UNHEALTHY
    assert "TransientExchangeError" in result.message
    assert "eyJ" not in result.message


def test_exchange_check_against_the_real_factory_default_paper(settings):
    settings.EXCHANGE = "paper"
    result = evaluate(checks.ExchangeCheck())
    assert (result.status, result.message) == (HEALTHY, "paper exchange (offline)")


# --- gemini_api ---------------------------------------------------------------------------


def test_provider_healthy(provider_double):
    result = evaluate(checks.SignalProviderCheck())
    assert (result.status, result.message) == (HEALTHY, "gemini-2.5-flash listed")
    assert provider_double.closed


def test_provider_warning_status_is_a_warning(provider_double):
    provider_double.result = ProviderStatus(True, "per-day quota exhausted until 09:00 UTC", warning=True)
    assert evaluate(checks.SignalProviderCheck()).status == WARNING


def test_per_day_quota_error_is_a_warning(provider_double):
    provider_double.error = QuotaExhaustedError("RESOURCE_EXHAUSTED per day", per_day=True)
    result = evaluate(checks.SignalProviderCheck())
    assert result.status == WARNING
    assert "per-day quota" in result.message


def test_unavailable_provider_is_unhealthy_and_its_key_never_shows(provider_double):
    provider_double.result = ProviderStatus(
        False,
        "GET https://generativelanguage.googleapis.com/v1beta/models?key=AIzaSyA1234567890abcdefghijklmnopqrstuv failed",
    )
    result = evaluate(checks.SignalProviderCheck())
    assert result.status == UNHEALTHY
    assert "AIza" not in result.message
    assert "key=***" in result.message


def test_provider_error_is_unhealthy(provider_double):
    provider_double.error = TransientProviderError("connect timeout")
    result = evaluate(checks.SignalProviderCheck())
    assert result.status == UNHEALTHY
    assert "connect timeout" in result.message


def test_provider_check_against_the_real_factory_rule_based(settings):
    from trading.clients.ai import reset_signal_provider

    settings.GEMINI_API_KEY = ""
    reset_signal_provider()
    try:
        result = evaluate(checks.SignalProviderCheck())
    finally:
        reset_signal_provider()
    assert result.status == HEALTHY
    assert result.message


# --- scheduler ----------------------------------------------------------------------------


def test_scheduler_healthy_with_a_live_cluster_and_schedules_on_time(live_cluster, schedules):
    result = evaluate(checks.SchedulerCheck())
    assert result.status == HEALTHY, result.message
    assert "1 cluster(s) alive" in result.message


def test_scheduler_unhealthy_without_a_cluster(shared_cache_table, schedules):
    result = evaluate(checks.SchedulerCheck())
    assert result.status == UNHEALTHY
    assert "no django-q2 cluster" in result.message


def test_scheduler_ignores_a_stopped_cluster(monkeypatch, schedules):
    from django_q.conf import Conf

    class StoppedStat:
        status = Conf.STOPPED

    monkeypatch.setattr("health.checks.get_cluster_stats", lambda: [StoppedStat()])
    assert evaluate(checks.SchedulerCheck()).status == UNHEALTHY


def test_scheduler_unhealthy_when_a_schedule_is_missing(live_cluster, schedules):
    from django_q.models import Schedule

    Schedule.objects.filter(name="cleanup_old_data").delete()
    result = evaluate(checks.SchedulerCheck())
    assert result.status == UNHEALTHY
    assert "missing schedules: cleanup_old_data" in result.message


def test_scheduler_warning_when_a_schedule_is_overdue(live_cluster):
    # 1-minute schedule: late beyond interval + 90 s grace (150 s), not beyond 2 intervals + grace (210 s).
    make_schedules(overdue=datetime.timedelta(seconds=180))
    result = evaluate(checks.SchedulerCheck())
    assert result.status == WARNING
    assert "collect_market_data" in result.message


def test_scheduler_unhealthy_when_a_schedule_is_far_overdue(live_cluster):
    make_schedules(overdue=datetime.timedelta(minutes=10))
    result = evaluate(checks.SchedulerCheck())
    assert result.status == UNHEALTHY
    assert "collect_market_data (10 min late)" in result.message


def test_scheduler_warning_when_a_schedule_is_paused(live_cluster):
    from django_q.models import Schedule

    make_schedules(overdue=datetime.timedelta(hours=3))
    Schedule.objects.filter(name="collect_market_data").update(repeats=0)
    result = evaluate(checks.SchedulerCheck())
    assert (result.status, result.message) == (WARNING, "paused schedules: collect_market_data")


def test_scheduler_healthy_with_the_schedules_the_pipeline_creates(live_cluster):
    from django_q.models import Schedule

    from trading.services.scheduling import ensure_schedules

    Schedule.objects.all().delete()
    ensure_schedules()
    result = evaluate(checks.SchedulerCheck())
    assert result.status == HEALTHY, result.message


def test_schedule_interval_by_type():
    from django_q.models import Schedule

    assert checks.schedule_interval(Schedule(schedule_type=Schedule.MINUTES, minutes=5)) == datetime.timedelta(
        minutes=5
    )
    assert checks.schedule_interval(Schedule(schedule_type=Schedule.DAILY)) == datetime.timedelta(days=1)
    assert checks.schedule_interval(Schedule(schedule_type=Schedule.ONCE, next_run=timezone.now())) is None


# --- recent_signal ------------------------------------------------------------------------


def _signal(age: datetime.timedelta):
    from trading.models import TradingSignal

    return TradingSignal.objects.create(
        signal_type="BUY", confidence=Decimal("0.8"), provider="gemini", created_at=timezone.now() - age
    )


def test_recent_signal_healthy_within_the_hour():
    _signal(datetime.timedelta(minutes=20))
    result = evaluate(checks.RecentSignalCheck())
    assert (result.status, result.message) == (HEALTHY, "last signal 20 min ago")


def test_recent_signal_warning_when_older_than_an_hour():
    _signal(datetime.timedelta(minutes=61))
    _signal(datetime.timedelta(hours=5))
    result = evaluate(checks.RecentSignalCheck())
    assert (result.status, result.message) == (WARNING, "last signal 61 min ago")


def test_recent_signal_warning_when_none_exists():
    result = evaluate(checks.RecentSignalCheck())
    assert (result.status, result.message) == (WARNING, "no trading signal yet")


def test_recent_signal_window_follows_a_longer_signal_interval(monkeypatch):
    monkeypatch.setattr("health.checks.get_config_value", lambda key: {"signal_interval_minutes": 120}[key])
    _signal(datetime.timedelta(minutes=200))
    assert evaluate(checks.RecentSignalCheck()).status == HEALTHY


# --- recent_order -------------------------------------------------------------------------


def _order(status: str, age: datetime.timedelta):
    from trading.models import Order

    return Order.objects.create(
        market="KRW-BTC",
        side="bid",
        ord_type="price",
        price=Decimal("10000"),
        status=status,
        created_at=timezone.now() - age,
    )


def test_recent_order_healthy_when_nothing_is_stuck():
    _order("SUBMITTED", datetime.timedelta(minutes=2))  # within poll timeout (30 s) + sync period (5 min)
    _order("FILLED", datetime.timedelta(days=1))
    result = evaluate(checks.RecentOrderCheck())
    assert (result.status, result.message) == (HEALTHY, "no order stuck in PENDING/SUBMITTED")


def test_recent_order_warning_when_stuck_past_one_sync_period():
    order = _order("PENDING", datetime.timedelta(minutes=7))
    result = evaluate(checks.RecentOrderCheck())
    assert result.status == WARNING
    assert order.identifier in result.message
    assert "1 order(s)" in result.message


def test_recent_order_unhealthy_when_stuck_past_two_sync_periods():
    _order("SUBMITTED", datetime.timedelta(minutes=7))
    _order("SUBMITTED", datetime.timedelta(minutes=30))
    result = evaluate(checks.RecentOrderCheck())
    assert result.status == UNHEALTHY
    assert "2 order(s)" in result.message


def test_recent_order_reads_the_poll_timeout_from_the_config_service():
    from trading.services.config import set_value

    set_value("order_poll_timeout_s", 600)  # 10 min + 5 min sync: a 7-minute order is not stuck
    _order("SUBMITTED", datetime.timedelta(minutes=7))
    assert evaluate(checks.RecentOrderCheck()).status == HEALTHY


# --- django-health-check contract ---------------------------------------------------------


def test_run_raises_django_health_check_exceptions(provider_double):
    provider_double.result = ProviderStatus(True, "quota", warning=True)
    with pytest.raises(ServiceWarning):
        checks.SignalProviderCheck().run()
    provider_double.result = ProviderStatus(False, "down")
    with pytest.raises(ServiceUnavailable):
        checks.SignalProviderCheck().run()


def test_unexpected_crash_becomes_unavailable_with_masked_text(monkeypatch):
    def explode():
        raise RuntimeError("boom with secret_key=abcdef123456")

    monkeypatch.setattr("health.checks.get_exchange", explode)
    with pytest.raises(ServiceUnavailable) as caught:
        checks.ExchangeCheck().run()
    assert "abcdef123456" not in caught.value.message
    assert "RuntimeError" in caught.value.message


def test_check_timeout_follows_the_setting(settings):
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    assert checks.DatabaseCheck().timeout == datetime.timedelta(seconds=0.5)
