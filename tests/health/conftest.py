"""Fixtures for the health tests: small doubles of the exchange / signal-provider interfaces,
a live django-q2 cluster stat in the real shared cache, and the job schedules."""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from trading.clients.ai.base import ProviderStatus
from trading.clients.exchange.base import Ticker


@dataclass
class ExchangeDouble:
    """The part of the Exchange interface the upbit_api check uses."""

    name: str = "upbit"
    error: Exception | None = None
    hang: threading.Event | None = None
    closed: bool = False
    calls: list[str] = field(default_factory=list)

    def get_ticker(self, market: str) -> Ticker:
        self.calls.append(market)
        if self.hang is not None:
            self.hang.wait(5)
        if self.error is not None:
            raise self.error
        now = timezone.now()
        price = Decimal("101000000")
        return Ticker(market, price, price, price, price, Decimal("1"), Decimal("0"), now)

    def close(self) -> None:
        self.closed = True


@dataclass
class ProviderDouble:
    """The part of the SignalProvider interface the gemini_api check uses."""

    result: ProviderStatus | None = None
    error: Exception | None = None
    name: str = "gemini"
    closed: bool = False

    def status(self) -> ProviderStatus:
        if self.error is not None:
            raise self.error
        return self.result or ProviderStatus(True, "gemini-2.5-flash listed")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def exchange_double(monkeypatch) -> ExchangeDouble:
    double = ExchangeDouble()
    monkeypatch.setattr("health.checks.get_exchange", lambda: double)
    return double


@pytest.fixture
def provider_double(monkeypatch) -> ProviderDouble:
    double = ProviderDouble()
    monkeypatch.setattr("health.checks.get_signal_provider", lambda: double)
    return double


@pytest.fixture
def shared_cache_table(db) -> None:
    call_command("createcachetable", "django_shared_cache", verbosity=0)


@pytest.fixture
def live_cluster(shared_cache_table) -> Iterator[str]:
    """Publish a cluster stat exactly as django-q2's sentinel does (signed, in the shared cache)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage
    from django_q.status import Stat, Status

    cluster_id = "health-test-cluster"
    status = Status(pid=os.getpid(), cluster_id=cluster_id)
    status.status = Conf.IDLE
    broker = get_broker()
    broker.set_stat(Stat.get_key(cluster_id), SignedPackage.dumps(status, True), 60)
    yield cluster_id
    broker.cache.delete(Stat.get_key(cluster_id))


def make_schedules(overdue: datetime.timedelta = datetime.timedelta(0)) -> None:
    """The five job schedules; ``overdue`` moves collect_market_data's next_run into the past."""
    from django_q.models import Schedule

    now = timezone.now()
    cadence = {
        "collect_market_data": (Schedule.MINUTES, 1),
        "check_volatility": (Schedule.MINUTES, 1),
        "generate_trading_signal": (Schedule.MINUTES, 30),
        "sync_pending_orders": (Schedule.MINUTES, 5),
        "cleanup_old_data": (Schedule.DAILY, None),
    }
    for name, (schedule_type, minutes) in cadence.items():
        next_run = now + datetime.timedelta(seconds=30)
        if name == "collect_market_data":
            next_run = now - overdue
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "trading.jobs.noop",
                "schedule_type": schedule_type,
                "minutes": minutes,
                "next_run": next_run,
                "repeats": -1,
            },
        )


@pytest.fixture
def schedules(db) -> None:
    make_schedules()


@pytest.fixture
def recent_signal(db):
    from trading.models import TradingSignal

    return TradingSignal.objects.create(signal_type="HOLD", confidence=Decimal("0.5"), provider="rule_based")


@pytest.fixture
def healthy_system(exchange_double, provider_double, live_cluster, schedules, recent_signal) -> None:
    """Every dependency healthy."""
