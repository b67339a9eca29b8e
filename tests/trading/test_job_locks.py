"""Lease locks: acquire, renew, expire, steal after expiry, successor hand-over; one winner in a race."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.concurrency import run_in_threads
from trading.models import JobLock
from trading.services import job_locks

pytestmark = pytest.mark.django_db


def test_acquire_free_lock_then_second_holder_is_refused():
    now = timezone.now()
    first = job_locks.acquire("job:x", 30, now=now)
    assert first is not None
    assert job_locks.acquire("job:x", 30, now=now + timedelta(seconds=5)) is None
    assert JobLock.objects.get(name="job:x").owner == first


def test_renew_extends_and_keeps_a_second_holder_out():
    now = timezone.now()
    token = job_locks.acquire("job:x", 30, now=now)
    assert job_locks.renew("job:x", token, 30, now=now + timedelta(seconds=25), last_slot=7)
    # Without the renewal the lease would have expired at +30 s.
    assert job_locks.acquire("job:x", 30, now=now + timedelta(seconds=40)) is None
    assert job_locks.last_slot("job:x") == 7


def test_expired_lease_is_stolen_and_the_old_holder_cannot_renew_or_release():
    now = timezone.now()
    old = job_locks.acquire("job:x", 30, now=now)
    new = job_locks.acquire("job:x", 30, now=now + timedelta(seconds=31))
    assert new is not None and new != old
    assert not job_locks.renew("job:x", old, 30, now=now + timedelta(seconds=32))
    assert not job_locks.release("job:x", old)
    assert job_locks.holds("job:x", new, now=now + timedelta(seconds=33))


def test_release_frees_the_lock_for_the_next_holder():
    token = job_locks.acquire("job:x", 30)
    assert job_locks.release("job:x", token)
    assert job_locks.acquire("job:x", 30) is not None


def test_reacquire_by_the_holder_renews():
    now = timezone.now()
    token = job_locks.acquire("job:x", 30, now=now)
    assert job_locks.acquire("job:x", 30, token=token, now=now + timedelta(seconds=10)) == token


def test_successor_hand_over_moves_the_lease_without_freeing_it():
    now = timezone.now()
    holder = job_locks.acquire("driver:x", 45, now=now)
    successor = job_locks.new_token()
    assert job_locks.register_successor("driver:x", successor, now=now)
    # Only one successor at a time.
    assert not job_locks.register_successor("driver:x", job_locks.new_token(), now=now)
    assert job_locks.successor_waiting("driver:x", holder)
    assert job_locks.hand_over("driver:x", holder, 45, now=now) == successor
    lock = JobLock.objects.get(name="driver:x")
    assert (lock.owner, lock.successor) == (successor, "")
    assert job_locks.holds("driver:x", successor, now=now)
    assert not job_locks.holds("driver:x", holder, now=now)
    # Nothing to hand over when nobody waits.
    assert job_locks.hand_over("driver:x", successor, 45, now=now) is None


def test_a_stale_successor_slot_is_taken_over():
    now = timezone.now()
    job_locks.acquire("driver:x", 45, now=now)
    assert job_locks.register_successor("driver:x", "first", now=now)
    assert job_locks.register_successor("driver:x", "second", stale_after_s=90, now=now + timedelta(seconds=91))
    job_locks.withdraw_successor("driver:x", "second")
    assert JobLock.objects.get(name="driver:x").successor == ""


@pytest.mark.django_db(transaction=True)
def test_racing_threads_exactly_one_acquires():
    racers = 8
    barrier = threading.Barrier(racers)

    def race() -> str | None:
        barrier.wait()
        return job_locks.acquire("job:race", 30)

    tokens, errors = run_in_threads(race, racers)
    assert errors == []
    winners = [token for token in tokens if token]
    assert len(winners) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_lock_holds_no_transaction_or_connection_between_calls():
    """On PostgreSQL the lease is plain rows: no advisory lock and no open transaction survives the call."""
    token = job_locks.acquire("job:pg", 30)
    assert token is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%'"
        )
        assert cursor.fetchone()[0] == 0
    assert not connection.in_atomic_block
    # Expiry and steal use the database's own comparison of timestamptz values.
    later = timezone.now() + timedelta(seconds=31)
    assert job_locks.acquire("job:pg", 30, now=later) not in (None, token)
