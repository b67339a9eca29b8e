"""The exchange the process trades on: one instance per process, chosen by ``settings.EXCHANGE``.

``paper`` (the default) is the offline simulator; ``upbit`` is the real
exchange (imported lazily so the paper default needs none of its dependencies).
"""

from __future__ import annotations

import os
import threading

from django.conf import settings

from trading.clients.exchange.base import Exchange

_lock = threading.Lock()
_owner_pid = 0  # a forked child must not use its parent's HTTP session
_instance: Exchange | None = None


def _build() -> Exchange:
    if settings.EXCHANGE == "upbit":
        from trading.clients.exchange.upbit import UpbitExchange

        return UpbitExchange(
            access_key=settings.UPBIT_ACCESS_KEY,
            secret_key=settings.UPBIT_SECRET_KEY,
            base_url=settings.UPBIT_API_URL,
            connect_timeout=settings.UPBIT_CONNECT_TIMEOUT,
            read_timeout=settings.UPBIT_READ_TIMEOUT,
        )
    if settings.EXCHANGE == "paper":
        from trading.clients.exchange.paper import PaperExchange

        return PaperExchange()
    raise ValueError(f"unknown EXCHANGE {settings.EXCHANGE!r} (expected 'paper' or 'upbit')")


def get_exchange() -> Exchange:
    """The process-wide exchange client (created on first use)."""
    global _instance, _owner_pid
    if _instance is None or _owner_pid != os.getpid():
        with _lock:
            if _instance is None or _owner_pid != os.getpid():
                _instance, _owner_pid = _build(), os.getpid()
    return _instance


def reset_exchange() -> None:
    """Close and forget the instance (tests after changing settings; process shutdown)."""
    global _instance
    with _lock:
        instance, _instance = _instance, None
        inherited = _owner_pid != os.getpid()
    if instance is not None and not inherited:
        instance.close()
