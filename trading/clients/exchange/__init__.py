"""The exchange the process trades on: one instance per process, chosen by ``settings.EXCHANGE``.

``paper`` (the default) is the offline simulator; ``upbit`` is the real
exchange (imported lazily so the paper default needs none of its dependencies).
"""

from __future__ import annotations

from django.conf import settings

from trading.clients.exchange.base import Exchange
from trading.clients.singleton import ProcessLocalSingleton


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


_singleton: ProcessLocalSingleton[Exchange] = ProcessLocalSingleton(_build)


def get_exchange() -> Exchange:
    """The process-wide exchange client (created on first use)."""
    return _singleton.get()


def reset_exchange() -> None:
    """Close and forget the instance (tests after changing settings; process shutdown)."""
    _singleton.reset()
