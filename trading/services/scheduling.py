"""Cadences of the five jobs on django-q2.

django-q2's sentinel evaluates schedules about every 30 s and its finest
interval is one minute, so the 10 s and 30 s jobs are run by *cadence
drivers*: a Schedule fires ``trading.jobs.drive_cadence(<job>)`` every
minute; the driver runs the job in slots aligned to the wall-clock grid
(every 10 s / 30 s), sleeping on the monotonic clock between slots.

Gap-free hand-over despite the sentinel's 0-30 s jitter: a driver holds the
lease ``driver:<job>``. A new driver that finds it held queues itself as the
successor and polls (every 0.5 s, at most 75 s). The running driver, after
each slot, sees the successor and hands the lease straight over; the lock row
records the last slot run, so the successor continues at the very next one.
A driver also stops at a hard maximum run time (150 s, below the cluster's
180 s task timeout) and when its Schedule is paused (``repeats = 0``) or
deleted.

The slower jobs are ordinary django-q2 Schedules (see ``SCHEDULES``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from django.db import connections
from django.utils import timezone

from trading.services import job_locks

logger = structlog.get_logger("trading.scheduling")

#: Jobs run by a per-minute driver, with their slot interval in seconds.
FAST_CADENCES: dict[str, int] = {"collect_market_data": 10, "check_volatility": 30}

DRIVER_LEASE_TTL_S = 45  # renewed every slot; a crashed driver's lease frees itself after this
SUCCESSOR_POLL_S = 0.5
SUCCESSOR_WAIT_MAX_S = 75
DRIVER_MAX_RUNTIME_S = 150  # below Q_CLUSTER["timeout"] (180 s)


class Clock(Protocol):
    def wall(self) -> float: ...  # seconds since the epoch, for the slot grid
    def monotonic(self) -> float: ...  # for measuring run time and sleeping
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class DriverReport:
    """What one driver did: how it ended and which slots it ran."""

    job_name: str
    outcome: str = ""  # handed_over | max_runtime | paused | lease_lost | redundant | gave_up
    slots: list[int] = field(default_factory=list)
    skipped_slots: list[int] = field(default_factory=list)


def driver_lease_name(job_name: str) -> str:
    return f"driver:{job_name}"


def schedule_is_active(job_name: str) -> bool:
    """An operator pauses a job in admin by setting its Schedule's *Repeats* to 0 (or deleting it)."""
    from django_q.models import Schedule

    repeats = Schedule.objects.filter(name=job_name).values_list("repeats", flat=True).first()
    return repeats is not None and repeats != 0


def _release_connections() -> None:
    # Between slots the driver sleeps: give pooled connections back (never inside a test transaction).
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def drive(
    job_name: str,
    run_slot: Callable[[], object],
    *,
    interval_s: int | None = None,
    clock: Clock | None = None,
    is_active: Callable[[str], bool] = schedule_is_active,
    now: Callable[[], datetime] | None = None,
    max_runtime_s: float = DRIVER_MAX_RUNTIME_S,
    token: str | None = None,
) -> DriverReport:
    """Run ``run_slot`` on the ``interval_s`` grid for about a minute; see the module docstring."""
    clock = clock or SystemClock()
    interval = interval_s or FAST_CADENCES[job_name]
    db_now = now or (lambda: datetime.fromtimestamp(clock.wall(), tz=UTC))
    lease = driver_lease_name(job_name)
    token = token or job_locks.new_token()
    started = clock.monotonic()
    report = DriverReport(job_name=job_name)

    with structlog.contextvars.bound_contextvars(driver=lease):
        if job_locks.acquire(lease, DRIVER_LEASE_TTL_S, token=token, now=db_now()) is None:
            waited = _wait_as_successor(lease, token, clock, db_now, started)
            if waited != "acquired":
                report.outcome = waited
                _release_connections()
                logger.info("driver.not_started", outcome=report.outcome)
                return report

        previous = job_locks.last_slot(lease)
        current = math.floor(clock.wall() / interval)
        next_slot = current if previous is None else max(previous + 1, current)
        if previous is not None and previous + 1 < current:
            report.skipped_slots.extend(range(previous + 1, current))
            logger.warning("driver.slots_missed", count=current - previous - 1)

        try:
            while True:
                wait_s = next_slot * interval - clock.wall()
                if clock.monotonic() - started + max(wait_s, 0) > max_runtime_s:
                    report.outcome = "max_runtime"
                    break
                if not is_active(job_name):
                    report.outcome = "paused"
                    break
                _release_connections()
                clock.sleep(wait_s)
                if not job_locks.renew(lease, token, DRIVER_LEASE_TTL_S, now=db_now(), last_slot=next_slot):
                    report.outcome = "lease_lost"
                    logger.warning("driver.lease_lost")
                    return report
                run_slot()
                report.slots.append(next_slot)
                if job_locks.hand_over(lease, token, DRIVER_LEASE_TTL_S, now=db_now()):
                    report.outcome = "handed_over"
                    return report
                next_slot += 1
                late_until = math.floor(clock.wall() / interval)
                if late_until > next_slot:
                    # The run overran whole slots: skip them rather than bunch runs together.
                    report.skipped_slots.extend(range(next_slot, late_until))
                    logger.warning("driver.slots_skipped", count=late_until - next_slot)
                    next_slot = late_until
            if not job_locks.hand_over(lease, token, DRIVER_LEASE_TTL_S, now=db_now()):
                job_locks.release(lease, token)
            return report
        finally:
            _release_connections()
            logger.info("driver.stopped", outcome=report.outcome, slots=len(report.slots))


def _wait_as_successor(lease: str, token: str, clock: Clock, db_now: Callable[[], datetime], started: float) -> str:
    """Queue behind the running driver until it hands over (or its lease expires).

    ``"acquired"``, ``"redundant"`` (another successor is already queued) or ``"gave_up"``.
    """
    if not job_locks.register_successor(lease, token, stale_after_s=SUCCESSOR_WAIT_MAX_S + 15, now=db_now()):
        return "redundant"
    while clock.monotonic() - started < SUCCESSOR_WAIT_MAX_S:
        if job_locks.holds(lease, token, now=db_now()):
            return "acquired"
        if job_locks.acquire(lease, DRIVER_LEASE_TTL_S, token=token, now=db_now()):
            job_locks.withdraw_successor(lease, token)
            return "acquired"
        _release_connections()
        clock.sleep(SUCCESSOR_POLL_S)
    job_locks.withdraw_successor(lease, token)
    return "gave_up"


# --- Schedules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    schedule_type: str
    minutes: int | None = None
    args: str | None = None


def schedule_specs() -> list[ScheduleSpec]:
    """The five Schedules, by name (the job names of seed 004)."""
    from django_q.models import Schedule

    from trading.services import config

    return [
        ScheduleSpec("collect_market_data", "trading.jobs.drive_cadence", Schedule.MINUTES, 1, "'collect_market_data'"),
        ScheduleSpec("check_volatility", "trading.jobs.drive_cadence", Schedule.MINUTES, 1, "'check_volatility'"),
        ScheduleSpec(
            "generate_trading_signal",
            "trading.jobs.generate_trading_signal",
            Schedule.MINUTES,
            int(config.get_value("signal_interval_minutes")),
        ),
        ScheduleSpec("sync_pending_orders", "trading.jobs.sync_pending_orders", Schedule.MINUTES, 5),
        ScheduleSpec("cleanup_old_data", "trading.jobs.cleanup_old_data", Schedule.DAILY),
    ]


def ensure_schedules(*, signal_now: bool = False, now: datetime | None = None) -> dict[str, str]:
    """Create or update the five Schedules by name; idempotent, and an operator's pause is kept.

    ``signal_now`` makes the next ``generate_trading_signal`` due at once. Pending
    orders are always reconciled at start (``sync_pending_orders`` due now).
    Returns ``{name: "created" | "updated" | "unchanged" | "paused"}``.
    """
    from django_q.models import Schedule

    now = now or timezone.now()
    actions: dict[str, str] = {}
    for spec in schedule_specs():
        rows = list(Schedule.objects.filter(name=spec.name).order_by("id"))
        for duplicate in rows[1:]:
            duplicate.delete()
        first_run = now
        if spec.name == "generate_trading_signal" and not signal_now:
            first_run = now + timedelta(minutes=spec.minutes or 30)
        elif spec.name == "cleanup_old_data":
            first_run = now + timedelta(days=1)
        if not rows:
            Schedule.objects.create(
                name=spec.name,
                func=spec.func,
                args=spec.args,
                schedule_type=spec.schedule_type,
                minutes=spec.minutes,
                repeats=-1,
                next_run=first_run,
            )
            actions[spec.name] = "created"
            continue
        schedule = rows[0]
        wanted = {"func": spec.func, "args": spec.args, "schedule_type": spec.schedule_type, "minutes": spec.minutes}
        changed = [key for key, value in wanted.items() if getattr(schedule, key) != value]
        for key in changed:
            setattr(schedule, key, wanted[key])
        paused = schedule.repeats == 0
        if not paused:
            if schedule.repeats != -1:
                schedule.repeats = -1
                changed.append("repeats")
            due_now = spec.name == "sync_pending_orders" or (spec.name == "generate_trading_signal" and signal_now)
            if due_now and (schedule.next_run is None or schedule.next_run > now):
                schedule.next_run = now
                changed.append("next_run")
        if changed:
            schedule.save()
        actions[spec.name] = "paused" if paused else ("updated" if changed else "unchanged")
    logger.info("schedules.ensured", **actions)
    return actions
