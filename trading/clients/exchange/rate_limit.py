"""Client-side throttling for Upbit's per-group request limits, so normal operation never meets a 429.

Upbit limits requests per *group* and reports what is left on every answer
(``Remaining-Req: group=default; min=1800; sec=29``). Over the limit it answers
429; calling on after 429s earns a temporary ban (418). This module keeps, per
group:

* a bucket of ``limit`` tokens per second; each call takes a token and that
  token comes back exactly one window (1 s plus a small margin) later, so no
  1-second window ever sees more than ``limit`` calls (a sliding-window bucket:
  it never allows the "full bucket + refill" double burst of a classic bucket);
* the server's own count: when ``Remaining-Req`` says ``sec=0`` (other processes
  share the key's quota) or a 429 arrives, the group pauses until the next window;
* bans: after a 418 the group is refused locally (``BannedError`` without any
  HTTP) until the ban ends, so a ban is never extended by hammering.

The state is **per process** (one ``UpbitExchange`` per process, kept by the
factory): several processes sharing one key still rely on ``Remaining-Req``
and on the retry policy's backoff after a 429. Clock and sleep are injectable
so tests run without real waiting.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from trading.clients.exchange.errors import BannedError

# Upbit's documented limits (requests per second): quotation (public market
# data) 10, exchange "default" 30, orders 8.
DEFAULT_LIMITS: dict[str, int] = {"quotation": 10, "default": 30, "order": 8}
WINDOW_SECONDS = 1.0
WINDOW_MARGIN_SECONDS = 0.05  # latency jitter between our clock and the server's window
DEFAULT_BAN_SECONDS = 60.0

_REMAINING_RE = re.compile(r"(\w+)\s*=\s*([\w-]+)")


@dataclass(frozen=True)
class RemainingRequests:
    """A parsed ``Remaining-Req`` header."""

    group: str
    minute: int | None
    second: int | None


def parse_remaining_req(value: str | None) -> RemainingRequests | None:
    """Parse ``group=default; min=1800; sec=29``; ``None`` when absent or unreadable."""
    if not value:
        return None
    fields = dict(_REMAINING_RE.findall(value))
    if "group" not in fields:
        return None

    def number(key: str) -> int | None:
        raw = fields.get(key)
        return int(raw) if raw is not None and raw.isdigit() else None

    return RemainingRequests(group=fields["group"], minute=number("min"), second=number("sec"))


@dataclass
class _GroupState:
    limit: int
    sent: deque[float] = field(default_factory=deque)  # monotonic send times within the window
    paused_until: float = 0.0  # server said "no more this second" (sec=0 or 429)
    banned_until: float = 0.0  # 418


class RateLimiter:
    """Per-group throttle, server-remaining tracking and ban book-keeping (thread-safe)."""

    def __init__(
        self,
        limits: dict[str, int] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window: float = WINDOW_SECONDS + WINDOW_MARGIN_SECONDS,
    ) -> None:
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._clock = clock
        self._sleep = sleep
        self._window = window
        self._lock = threading.Lock()
        self._groups: dict[str, _GroupState] = {}

    def _state(self, group: str) -> _GroupState:
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _GroupState(limit=self._limits.get(group, self._limits["default"]))
        return state

    def acquire(self, group: str) -> None:
        """Wait for a token of ``group``; raise ``BannedError`` at once while the group is banned."""
        while True:
            with self._lock:
                state = self._state(group)
                now = self._clock()
                if state.banned_until > now:
                    remaining = state.banned_until - now
                    raise BannedError(
                        f"Upbit group '{group}' is banned for another {remaining:.0f} s; not calling",
                        until=datetime.now(UTC) + timedelta(seconds=remaining),
                        name="banned",
                        status=418,
                    )
                while state.sent and state.sent[0] <= now - self._window:
                    state.sent.popleft()
                wait = 0.0
                if state.paused_until > now:
                    wait = state.paused_until - now
                elif len(state.sent) >= state.limit:
                    wait = state.sent[0] + self._window - now
                if wait <= 0:
                    state.sent.append(now)
                    return
            self._sleep(wait)

    def observe(self, group: str, remaining_header: str | None) -> None:
        """Take the server's count into account: ``sec=0`` pauses the group until the next window."""
        remaining = parse_remaining_req(remaining_header)
        if remaining is None or remaining.second is None or remaining.second > 0:
            return
        self.pause(group, self._window)

    def pause(self, group: str, seconds: float) -> None:
        """No call of ``group`` before ``seconds`` from now (after ``sec=0`` or a 429)."""
        with self._lock:
            state = self._state(group)
            state.paused_until = max(state.paused_until, self._clock() + seconds)

    def ban(self, group: str, seconds: float) -> datetime:
        """Record a 418 ban; returns when it ends (UTC)."""
        with self._lock:
            state = self._state(group)
            state.banned_until = max(state.banned_until, self._clock() + seconds)
            remaining = state.banned_until - self._clock()
        return datetime.now(UTC) + timedelta(seconds=remaining)

    def banned_for(self, group: str) -> float:
        """Seconds left of a ban on ``group`` (0 when not banned)."""
        with self._lock:
            return max(0.0, self._state(group).banned_until - self._clock())
