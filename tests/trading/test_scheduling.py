"""Cadence drivers (slot arithmetic with an injected clock) and ensure_schedules."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from trading.models import JobLock
from trading.services import job_locks
from trading.services.scheduling import (
    DRIVER_LEASE_TTL_S,
    SUCCESSOR_WAIT_MAX_S,
    drive,
    driver_lease_name,
    ensure_schedules,
    schedule_is_active,
)

pytestmark = pytest.mark.django_db

GRID = 1_800_000_000.0  # a multiple of 10 and 30 seconds since the epoch
LEASE = driver_lease_name("collect_market_data")


class FakeClock:
    """Wall and monotonic time that only move when the driver sleeps or a slot 'takes' time."""

    def __init__(self, wall: float) -> None:
        self._wall = wall
        self._monotonic = 1000.0
        self.on_sleep: Callable[[], None] | None = None
        self.sleeps: list[float] = []

    def wall(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)
        if self.on_sleep:
            self.on_sleep()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._wall, tz=UTC)


def _always_active(name: str) -> bool:
    return True


def _recorder(clock: FakeClock, took: float = 0.2, during: Callable[[int], None] | None = None):
    times: list[float] = []

    def run_slot() -> None:
        times.append(clock.wall())
        if during:
            during(len(times))
        clock.advance(took)

    return times, run_slot


def test_slots_follow_the_wall_clock_grid_until_max_runtime():
    clock = FakeClock(GRID + 3)
    times, run_slot = _recorder(clock)
    report = drive("collect_market_data", run_slot, clock=clock, is_active=_always_active, now=clock.now)
    assert report.outcome == "max_runtime"
    # The current slot runs at once, then every slot boundary: GRID+10 ... GRID+150.
    assert times[0] == GRID + 3
    assert times[1:] == [GRID + 10 * k for k in range(1, 16)]
    assert report.slots == [int(GRID // 10) + k for k in range(16)]
    # Stopped by itself: the lease is free and remembers the last slot.
    lock = JobLock.objects.get(name=LEASE)
    assert lock.owner == "" and lock.last_slot == report.slots[-1]


def test_volatility_driver_uses_thirty_second_slots():
    clock = FakeClock(GRID + 31)
    times, run_slot = _recorder(clock)
    drive("check_volatility", run_slot, clock=clock, is_active=_always_active, now=clock.now, max_runtime_s=100)
    assert [t - GRID for t in times] == [31, 60, 90, 120]


def test_hand_over_to_a_successor_continues_at_the_next_slot_without_gap_or_duplicate():
    clock = FakeClock(GRID + 1)
    # The next driver queues itself while the fourth slot of the first one runs.
    times_a, run_a = _recorder(
        clock, during=lambda n: n == 4 and job_locks.register_successor(LEASE, "driver-b", now=clock.now())
    )
    report_a = drive("collect_market_data", run_a, clock=clock, is_active=_always_active, now=clock.now)
    assert report_a.outcome == "handed_over"
    assert JobLock.objects.get(name=LEASE).owner == "driver-b"

    times_b, run_b = _recorder(clock)
    report_b = drive(
        "collect_market_data",
        run_b,
        clock=clock,
        is_active=_always_active,
        now=clock.now,
        max_runtime_s=35,
        token="driver-b",
    )
    assert report_b.slots[0] == report_a.slots[-1] + 1
    merged = times_a + times_b
    gaps = [later - earlier for earlier, later in itertools.pairwise(merged)]
    assert all(gap == pytest.approx(10) for gap in gaps[1:]), gaps
    assert len(set(report_a.slots + report_b.slots)) == len(report_a.slots + report_b.slots)


def test_a_new_driver_waits_as_successor_and_takes_over_when_handed_the_lease():
    clock = FakeClock(GRID + 5)
    job_locks.acquire(LEASE, DRIVER_LEASE_TTL_S, token="running", now=clock.now())
    job_locks.renew(LEASE, "running", DRIVER_LEASE_TTL_S, now=clock.now(), last_slot=int(GRID // 10))
    polls = []

    def holder_hands_over_after_a_few_polls() -> None:
        polls.append(clock.wall())
        if len(polls) == 3:
            assert job_locks.hand_over(LEASE, "running", DRIVER_LEASE_TTL_S, now=clock.now())

    clock.on_sleep = holder_hands_over_after_a_few_polls
    times, run_slot = _recorder(clock)
    report = drive(
        "collect_market_data", run_slot, clock=clock, is_active=_always_active, now=clock.now, max_runtime_s=30
    )
    assert clock.sleeps[:3] == [0.5, 0.5, 0.5]  # polled every 0.5 s
    assert report.slots[0] == int(GRID // 10) + 1  # the slot after the predecessor's last one
    assert times[0] == GRID + 10


def test_a_third_driver_leaves_when_a_successor_is_already_queued():
    clock = FakeClock(GRID)
    job_locks.acquire(LEASE, DRIVER_LEASE_TTL_S, token="running", now=clock.now())
    job_locks.register_successor(LEASE, "queued", now=clock.now())
    report = drive("collect_market_data", lambda: None, clock=clock, is_active=_always_active, now=clock.now)
    assert report.outcome == "redundant" and report.slots == []
    assert JobLock.objects.get(name=LEASE).successor == "queued"


def test_a_successor_gives_up_after_the_bounded_wait():
    clock = FakeClock(GRID)
    job_locks.acquire(LEASE, 10_000, token="stuck", now=clock.now())
    report = drive("collect_market_data", lambda: None, clock=clock, is_active=_always_active, now=clock.now)
    assert report.outcome == "gave_up"
    assert sum(clock.sleeps) <= SUCCESSOR_WAIT_MAX_S
    assert JobLock.objects.get(name=LEASE).successor == ""


def test_a_crashed_drivers_lease_expires_and_the_next_driver_resumes_at_the_current_slot():
    clock = FakeClock(GRID)
    job_locks.acquire(LEASE, DRIVER_LEASE_TTL_S, token="crashed", now=clock.now())
    job_locks.renew(LEASE, "crashed", DRIVER_LEASE_TTL_S, now=clock.now(), last_slot=int(GRID // 10))
    clock.advance(DRIVER_LEASE_TTL_S + 2)  # 47 s later: slots +10 ... +40 were missed
    _times, run_slot = _recorder(clock)
    report = drive(
        "collect_market_data", run_slot, clock=clock, is_active=_always_active, now=clock.now, max_runtime_s=20
    )
    assert report.skipped_slots == [int(GRID // 10) + k for k in (1, 2, 3)]
    assert report.slots[0] == int(GRID // 10) + 4


def test_a_paused_schedule_stops_the_driver_at_the_next_slot():
    clock = FakeClock(GRID)
    checks = []

    def active(name: str) -> bool:
        checks.append(name)
        return len(checks) <= 3

    times, run_slot = _recorder(clock)
    report = drive("collect_market_data", run_slot, clock=clock, is_active=active, now=clock.now)
    assert report.outcome == "paused"
    assert len(times) == 3
    assert JobLock.objects.get(name=LEASE).owner == ""


def test_a_slow_run_skips_the_slots_it_overran_instead_of_bunching():
    clock = FakeClock(GRID)
    times, run_slot = _recorder(clock, took=25)
    report = drive(
        "collect_market_data", run_slot, clock=clock, is_active=_always_active, now=clock.now, max_runtime_s=60
    )
    # Slots wholly overrun are skipped; the slot already under way runs at once, late.
    assert [t - GRID for t in times] == [0, 25, 50]
    base = int(GRID // 10)
    assert report.slots == [base, base + 2, base + 5]
    assert report.skipped_slots == [base + 1, base + 3, base + 4, base + 6]


def test_schedule_is_active_reads_repeats_from_admin():
    ensure_schedules()
    assert schedule_is_active("collect_market_data")
    Schedule.objects.filter(name="collect_market_data").update(repeats=0)
    assert not schedule_is_active("collect_market_data")
    Schedule.objects.filter(name="collect_market_data").delete()
    assert not schedule_is_active("collect_market_data")


# --- ensure_schedules -------------------------------------------------------------------------


def test_ensure_schedules_is_idempotent_and_creates_the_five_jobs():
    first = ensure_schedules()
    second = ensure_schedules()
    assert set(first.values()) == {"created"}
    assert set(second.values()) <= {"unchanged", "updated"}
    schedules = {s.name: s for s in Schedule.objects.all()}
    assert sorted(schedules) == sorted(
        [
            "collect_market_data",
            "check_volatility",
            "generate_trading_signal",
            "sync_pending_orders",
            "cleanup_old_data",
        ]
    )
    assert schedules["collect_market_data"].func == "trading.jobs.drive_cadence"
    assert schedules["collect_market_data"].args == "'collect_market_data'"
    assert (schedules["collect_market_data"].schedule_type, schedules["collect_market_data"].minutes) == ("I", 1)
    assert (schedules["generate_trading_signal"].schedule_type, schedules["generate_trading_signal"].minutes) == (
        "I",
        30,
    )
    assert (schedules["sync_pending_orders"].minutes, schedules["cleanup_old_data"].schedule_type) == (5, "D")
    assert schedules["generate_trading_signal"].func == "trading.jobs.generate_trading_signal"
    assert all(s.repeats == -1 for s in schedules.values())


def test_ensure_schedules_keeps_an_operators_pause_and_repairs_the_rest():
    ensure_schedules()
    Schedule.objects.filter(name="check_volatility").update(repeats=0)
    Schedule.objects.filter(name="sync_pending_orders").update(func="somewhere.else", minutes=60)
    Schedule.objects.create(name="collect_market_data", func="duplicate", schedule_type="I", minutes=1)
    actions = ensure_schedules()
    assert actions["check_volatility"] == "paused"
    assert Schedule.objects.get(name="check_volatility").repeats == 0
    sync = Schedule.objects.get(name="sync_pending_orders")
    assert (sync.func, sync.minutes) == ("trading.jobs.sync_pending_orders", 5)
    assert Schedule.objects.filter(name="collect_market_data").count() == 1
    assert Schedule.objects.count() == 5


def test_signal_now_makes_the_first_signal_due_at_once_otherwise_after_one_interval():
    now = timezone.now()
    ensure_schedules(now=now)
    assert Schedule.objects.get(name="generate_trading_signal").next_run == now + timedelta(minutes=30)
    call_command("ensure_schedules", "--signal-now")
    assert Schedule.objects.get(name="generate_trading_signal").next_run <= timezone.now()
    # Pending orders are reconciled at every start.
    assert Schedule.objects.get(name="sync_pending_orders").next_run <= timezone.now()


def test_signal_interval_follows_the_operator_setting():
    from trading.services import config

    config.set_value("signal_interval_minutes", 15)
    ensure_schedules()
    assert Schedule.objects.get(name="generate_trading_signal").minutes == 15


def test_drive_cadence_task_collects_a_row_per_slot(monkeypatch):
    """The django-q2 task end to end (real job wrapper, paper exchange, run locks) on the fake clock."""
    from decimal import Decimal

    import trading.clients.exchange as exchange_module
    from paper_exchange.price_feed import FixedPriceFeed
    from trading import jobs
    from trading.clients.exchange.paper import PaperExchange
    from trading.models import MarketData
    from trading.services import scheduling

    ensure_schedules()
    clock = FakeClock(GRID)
    monkeypatch.setattr(scheduling, "SystemClock", lambda: clock)
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("100000000")), clock=clock.now)
    monkeypatch.setattr(exchange_module, "get_exchange", lambda: exchange)

    result = jobs.drive_cadence("collect_market_data")

    assert result == {"job_name": "collect_market_data", "outcome": "max_runtime", "slots": 16}
    stamps = list(MarketData.objects.order_by("timestamp").values_list("timestamp", flat=True))
    assert len(stamps) == 16
    assert {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(stamps)} == {10.0}
