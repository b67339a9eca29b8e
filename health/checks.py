"""The six health checks behind ``/health/detail`` (django-health-check 4.x plugins).

Each check is a ``health_check.HealthCheck`` subclass: ``run`` returns normally
when healthy, raises ``ServiceWarning`` for a degraded component and
``ServiceUnavailable`` for a broken one. ``message`` holds the healthy-case
text. Every message passes through ``mask_text``: no secret, credential URL or
balance reaches a health answer.

Dependencies are reached through the module-level provider functions below
(``get_exchange``, ``get_signal_provider``, ``get_cluster_stats``,
``get_config_value``), imported lazily so this module loads before the trading
clients do, and so tests can swap one provider for a double.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import HealthCheckException, ServiceUnavailable, ServiceWarning

from health.masking import mask_text

SCHEDULED_JOBS = (
    "collect_market_data",
    "check_volatility",
    "generate_trading_signal",
    "sync_pending_orders",
    "cleanup_old_data",
)
SCHEDULE_GRACE = datetime.timedelta(seconds=90)  # the sentinel looks at schedules about every 30 s
SYNC_PERIOD = datetime.timedelta(minutes=5)  # sync_pending_orders cadence
SIGNAL_FRESHNESS = datetime.timedelta(hours=1)  # seed 004: a signal within the last hour


# --- providers (tests replace these) ---------------------------------------------------------


def get_exchange() -> Any:
    from trading.clients.exchange import get_exchange as factory

    return factory()


def get_signal_provider() -> Any:
    from trading.clients.ai import get_signal_provider as factory

    return factory()


def get_cluster_stats() -> list[Any]:
    """django-q2 cluster stats, read from the cache named by ``Q_CLUSTER['cache']`` (shared)."""
    from django_q.status import Stat

    return Stat.get_all()


def get_config_value(key: str) -> Any:
    from trading.services.config import get_value

    return get_value(key)


# --- helpers --------------------------------------------------------------------------------


def release_thread_connections() -> None:
    """Give this thread's DB connections back (to the pool): a check must not pin one."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def describe_error(error: BaseException) -> str:
    """``ErrorType: text`` with secrets masked, bounded in length."""
    text = mask_text(str(error)).strip()
    summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return summary[:300]


def humanize_age(age: datetime.timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


@dataclasses.dataclass(repr=False)
class ComponentCheck(HealthCheck):
    """Base of our checks: a component name, a healthy message, released DB connections."""

    component: ClassVar[str] = "component"
    message: str = dataclasses.field(default="", init=False, repr=False, compare=False)

    @property
    def timeout(self) -> datetime.timedelta:  # type: ignore[override]
        return datetime.timedelta(seconds=settings.HEALTH_CHECK_TIMEOUT)

    def __repr__(self) -> str:
        return self.component

    def check(self) -> str:
        """Return the healthy message, or raise ``ServiceWarning`` / ``ServiceUnavailable``."""
        raise NotImplementedError

    def run(self) -> None:
        try:
            self.message = mask_text(self.check())
        except HealthCheckException as error:
            error.message = mask_text(str(error.message))
            raise
        except Exception as error:  # any failure of a dependency is "unavailable"
            raise ServiceUnavailable(describe_error(error)) from None
        finally:
            release_thread_connections()


@dataclasses.dataclass(repr=False)
class DatabaseCheck(ComponentCheck):
    component: ClassVar[str] = "database"

    def check(self) -> str:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            row = cursor.fetchone()
        if not row or row[0] != 1:
            raise ServiceUnavailable(f"SELECT 1 answered {row!r}")
        return f"{connections['default'].vendor} answers SELECT 1"


@dataclasses.dataclass(repr=False)
class ExchangeCheck(ComponentCheck):
    """The exchange answers a cheap public call (the ticker); the paper exchange is offline by design."""

    component: ClassVar[str] = "upbit_api"

    def check(self) -> str:
        exchange = get_exchange()
        try:
            if getattr(exchange, "name", "") == "paper":
                return "paper exchange (offline)"
            market = settings.TRADING_MARKET
            try:
                ticker = exchange.get_ticker(market)
            except Exception as error:
                if getattr(error, "retry_after", None) is not None or type(error).__name__ == "RateLimitedError":
                    raise ServiceWarning(f"rate limited: {describe_error(error)}") from None
                raise ServiceUnavailable(describe_error(error)) from None
            if getattr(ticker, "market", market) != market:
                raise ServiceUnavailable(f"ticker answered for {ticker.market!r}, expected {market!r}")
            return f"{exchange.name} answers the {market} ticker"
        finally:
            close = getattr(exchange, "close", None)
            if callable(close):
                close()


@dataclasses.dataclass(repr=False)
class SignalProviderCheck(ComponentCheck):
    """The signal provider's own status: rule-based is always healthy; a per-day quota is a warning."""

    component: ClassVar[str] = "gemini_api"

    def check(self) -> str:
        provider = get_signal_provider()
        try:
            try:
                status = provider.status()
            except Exception as error:
                if getattr(error, "per_day", False):
                    raise ServiceWarning(f"per-day quota exhausted: {describe_error(error)}") from None
                raise ServiceUnavailable(describe_error(error)) from None
            detail = mask_text(status.detail or getattr(provider, "name", "provider"))
            if not status.available:
                raise ServiceUnavailable(detail)
            if status.warning:
                raise ServiceWarning(detail)
            return detail
        finally:
            close = getattr(provider, "close", None)
            if callable(close):
                close()


def schedule_interval(schedule: Any) -> datetime.timedelta | None:
    """How often ``schedule`` should fire (``None`` for one-off schedules)."""
    from django_q.models import Schedule

    fixed = {
        Schedule.MINUTES: datetime.timedelta(minutes=schedule.minutes or 1),
        Schedule.HOURLY: datetime.timedelta(hours=1),
        Schedule.DAILY: datetime.timedelta(days=1),
        Schedule.WEEKLY: datetime.timedelta(weeks=1),
    }
    if schedule.schedule_type in fixed:
        return fixed[schedule.schedule_type]
    if schedule.schedule_type == Schedule.ONCE or schedule.next_run is None:
        return None
    try:
        return schedule.calculate_next_run(schedule.next_run) - schedule.next_run
    except Exception:  # e.g. cron without croniter: assume daily
        return datetime.timedelta(days=1)


@dataclasses.dataclass(repr=False)
class SchedulerCheck(ComponentCheck):
    """A django-q2 cluster is alive (stats in the shared cache) and every job schedule is on time."""

    component: ClassVar[str] = "scheduler"
    job_names: ClassVar[tuple[str, ...]] = SCHEDULED_JOBS

    def check(self) -> str:
        from django_q.conf import Conf
        from django_q.models import Schedule

        stats = get_cluster_stats()
        alive = [stat for stat in stats if getattr(stat, "status", Conf.STOPPED) not in (Conf.STOPPED, Conf.STOPPING)]
        if not alive:
            raise ServiceUnavailable("no django-q2 cluster is running (no live stats in the shared cache)")

        schedules = {schedule.name: schedule for schedule in Schedule.objects.filter(name__in=self.job_names)}
        missing = [name for name in self.job_names if name not in schedules]
        if missing:
            raise ServiceUnavailable(f"missing schedules: {', '.join(missing)}")

        now = timezone.now()
        late: list[str] = []
        very_late: list[str] = []
        paused: list[str] = []
        for name in self.job_names:
            schedule = schedules[name]
            if schedule.repeats == 0:  # an operator paused it (django-q2 runs no schedule with 0 repeats)
                paused.append(name)
                continue
            interval = schedule_interval(schedule)
            if interval is None or schedule.next_run is None:
                continue
            overdue = now - schedule.next_run
            if overdue > 2 * interval + SCHEDULE_GRACE:
                very_late.append(f"{name} ({humanize_age(overdue)} late)")
            elif overdue > interval + SCHEDULE_GRACE:
                late.append(f"{name} ({humanize_age(overdue)} late)")
        if very_late:
            raise ServiceUnavailable(f"overdue schedules: {', '.join(very_late + late)}")
        if late or paused:
            problems = ([f"overdue schedules: {', '.join(late)}"] if late else []) + (
                [f"paused schedules: {', '.join(paused)}"] if paused else []
            )
            raise ServiceWarning("; ".join(problems))
        return f"{len(alive)} cluster(s) alive, {len(schedules)} schedules on time"


@dataclasses.dataclass(repr=False)
class RecentSignalCheck(ComponentCheck):
    """A trading signal within the last hour (or two signal intervals, when those are longer)."""

    component: ClassVar[str] = "recent_signal"

    def freshness(self) -> datetime.timedelta:
        try:
            interval = datetime.timedelta(minutes=int(get_config_value("signal_interval_minutes")))
        except Exception:  # config unreadable: the seed's hour
            return SIGNAL_FRESHNESS
        return max(SIGNAL_FRESHNESS, 2 * interval)

    def check(self) -> str:
        from trading.models import TradingSignal

        latest = TradingSignal.objects.order_by("-created_at").values_list("created_at", flat=True).first()
        if latest is None:
            raise ServiceWarning("no trading signal yet")
        age = timezone.now() - latest
        if age > self.freshness():
            raise ServiceWarning(f"last signal {humanize_age(age)} ago")
        return f"last signal {humanize_age(age)} ago"


@dataclasses.dataclass(repr=False)
class RecentOrderCheck(ComponentCheck):
    """No order left PENDING/SUBMITTED past the poll timeout plus one sync period."""

    component: ClassVar[str] = "recent_order"

    def check(self) -> str:
        from trading.models import Order

        try:
            poll_timeout = datetime.timedelta(seconds=int(get_config_value("order_poll_timeout_s")))
        except Exception:  # config unreadable: the schema default
            poll_timeout = datetime.timedelta(seconds=30)
        now = timezone.now()
        warn_after = poll_timeout + SYNC_PERIOD
        fail_after = poll_timeout + 2 * SYNC_PERIOD
        stuck = Order.objects.filter(status__in=Order.OPEN_STATUSES, created_at__lt=now - warn_after).order_by(
            "created_at"
        )
        oldest = stuck.values_list("identifier", "created_at").first()
        if oldest is None:
            return "no order stuck in PENDING/SUBMITTED"
        count = stuck.count()
        identifier, created_at = oldest
        text = f"{count} order(s) not final, oldest {identifier} for {humanize_age(now - created_at)}"
        if now - created_at > fail_after:
            raise ServiceUnavailable(text)
        raise ServiceWarning(text)


HEALTH_CHECKS: tuple[type[ComponentCheck], ...] = (
    DatabaseCheck,
    ExchangeCheck,
    SignalProviderCheck,
    SchedulerCheck,
    RecentSignalCheck,
    RecentOrderCheck,
)

CheckFactory = Callable[[], ComponentCheck]
