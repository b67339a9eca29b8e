"""Lease locks in the ``JobLock`` table.

Why a lease table and not a PostgreSQL advisory lock: a session-level advisory
lock lives as long as the DB session that took it, so the job would have to pin
one pooled connection for its whole run (including exchange and AI calls), and
it exists only on PostgreSQL. A lease row is taken and renewed with short,
atomic conditional UPDATEs (one statement each, autocommit), works the same on
SQLite and PostgreSQL, holds no connection or transaction while the job runs,
and frees itself when a crashed holder's lease expires.

Every function takes ``now`` so that tests can drive expiry without sleeping.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from trading.models import JobLock


def new_token() -> str:
    """A holder token, unique per acquisition attempt."""
    return uuid.uuid4().hex


def _ensure_row(name: str) -> None:
    # INSERT ... ON CONFLICT DO NOTHING: racing creators never fail.
    JobLock.objects.bulk_create([JobLock(name=name)], ignore_conflicts=True)


def acquire(name: str, ttl_s: float, *, token: str | None = None, now: datetime | None = None) -> str | None:
    """Take the lease ``name`` for ``ttl_s`` seconds; the token on success, ``None`` when someone else holds it.

    Succeeds when the lease is free, expired (a crashed holder) or already held
    by ``token`` (re-entry renews it). One conditional UPDATE decides, so two
    racers can never both win.
    """
    token = token or new_token()
    now = now or timezone.now()
    _ensure_row(name)
    won = (
        JobLock.objects.filter(name=name)
        .filter(Q(owner="") | Q(expires_at__isnull=True) | Q(expires_at__lte=now) | Q(owner=token))
        .update(owner=token, expires_at=now + timedelta(seconds=ttl_s), acquired_at=now, updated_at=now)
    )
    return token if won else None


def renew(name: str, token: str, ttl_s: float, *, now: datetime | None = None, last_slot: int | None = None) -> bool:
    """Extend the lease held by ``token``; ``False`` when it was lost (expired and taken over)."""
    now = now or timezone.now()
    changes: dict = {"expires_at": now + timedelta(seconds=ttl_s), "updated_at": now}
    if last_slot is not None:
        changes["last_slot"] = last_slot
    return bool(JobLock.objects.filter(name=name, owner=token).update(**changes))


def release(name: str, token: str) -> bool:
    """Give the lease up; only its holder can."""
    return bool(
        JobLock.objects.filter(name=name, owner=token).update(owner="", expires_at=None, updated_at=timezone.now())
    )


def holds(name: str, token: str, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return JobLock.objects.filter(name=name, owner=token, expires_at__gt=now).exists()


def register_successor(name: str, token: str, *, stale_after_s: float = 90, now: datetime | None = None) -> bool:
    """Queue ``token`` as the next holder of a held lease.

    Only one successor at a time: the slot is taken when empty, already ours, or
    left by a successor that has waited longer than ``stale_after_s`` (it gave up
    or died). A third driver therefore finds the queue full and leaves.
    """
    now = now or timezone.now()
    _ensure_row(name)
    stale = now - timedelta(seconds=stale_after_s)
    return bool(
        JobLock.objects.filter(name=name)
        .filter(Q(successor="") | Q(successor=token) | Q(successor_since__lt=stale))
        .update(successor=token, successor_since=now, updated_at=now)
    )


def withdraw_successor(name: str, token: str) -> None:
    JobLock.objects.filter(name=name, successor=token).update(successor="", successor_since=None)


def successor_waiting(name: str, token: str) -> bool:
    """Whether a successor is queued behind the lease ``token`` holds."""
    return JobLock.objects.filter(name=name, owner=token).exclude(successor="").exists()


def hand_over(name: str, token: str, ttl_s: float, *, now: datetime | None = None) -> str | None:
    """Pass the lease from ``token`` straight to the queued successor; the successor's token, or ``None``.

    The lease never becomes free in between, so no third party can slip in and
    the successor (polling ``holds``) continues at the next slot.
    """
    from django.db.models import F

    now = now or timezone.now()
    row = JobLock.objects.filter(name=name, owner=token).exclude(successor="").values("successor").first()
    if row is None:
        return None
    moved = JobLock.objects.filter(name=name, owner=token, successor=row["successor"]).update(
        owner=F("successor"),
        successor="",
        successor_since=None,
        acquired_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        updated_at=now,
    )
    return row["successor"] if moved else None


def last_slot(name: str) -> int | None:
    return JobLock.objects.filter(name=name).values_list("last_slot", flat=True).first()
