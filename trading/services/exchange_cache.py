"""A 10 s cache in front of the exchange for tickers, balances and order chance.

Why: jobs and API views ask for the same ticker/balances many times a minute;
Upbit's quotas are small. The cache is Django's cache alias ``exchange``
(per-process locmem, 10 s TTL in settings): values are the exchange
dataclasses themselves (picklable, ``Decimal``-exact). Each lookup is counted
in ``cache_stats`` (namespaces ``ticker`` / ``balance`` / ``order_chance``) and
in the ``cache_requests_total`` metric. After an order changes balances, call
``invalidate_balances()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import caches

from trading.clients.exchange.base import Balance, Exchange, OrderChance, Ticker
from trading.services import cache_stats

CACHE_ALIAS = "exchange"
BALANCES_KEY = "exchange:balances"

T = TypeVar("T")
_MISSING = object()


def _exchange(exchange: Exchange | None) -> Exchange:
    if exchange is not None:
        return exchange
    from trading.clients.exchange import get_exchange  # lazy: the factory reads settings

    return get_exchange()


def _cached(namespace: str, key: str, load: Callable[[], T], timeout: float | None) -> T:
    cache = caches[CACHE_ALIAS]
    value = cache.get(key, _MISSING)
    hit = value is not _MISSING
    cache_stats.record(namespace, hit)  # also counts ``cache_requests_total``
    if hit:
        return value  # type: ignore[return-value]
    value = load()
    if timeout is None:
        cache.set(key, value)  # the alias's TTL (10 s)
    else:
        cache.set(key, value, timeout)
    return value


def _ticker_key(market: str) -> str:
    return f"exchange:ticker:{market}"


def get_ticker(market: str, *, exchange: Exchange | None = None, timeout: float | None = None) -> Ticker:
    """The market's ticker, at most 10 s old."""
    return _cached("ticker", _ticker_key(market), lambda: _exchange(exchange).get_ticker(market), timeout)


def get_balances(*, exchange: Exchange | None = None, timeout: float | None = None) -> list[Balance]:
    """All account balances, at most 10 s old (or fresh after ``invalidate_balances``)."""
    return _cached("balance", BALANCES_KEY, lambda: _exchange(exchange).get_accounts(), timeout)


def get_balance(currency: str, *, exchange: Exchange | None = None) -> Balance | None:
    """One currency's balance from the cached list (``None`` when the account has none)."""
    return next((balance for balance in get_balances(exchange=exchange) if balance.currency == currency), None)


def get_order_chance(market: str, *, exchange: Exchange | None = None, timeout: float | None = None) -> OrderChance:
    """Fees, minimum order and free balances for ``market`` (cached with the balances' lifetime)."""
    return _cached(
        "order_chance",
        f"exchange:chance:{market}",
        lambda: _exchange(exchange).get_order_chance(market),
        timeout,
    )


def invalidate_balances(market: str | None = None) -> None:
    """Forget cached balances and the order chance (which embeds balances) after an order or a fill."""
    market = market or settings.TRADING_MARKET
    caches[CACHE_ALIAS].delete_many([BALANCES_KEY, f"exchange:chance:{market}"])


def invalidate_ticker(market: str) -> None:
    caches[CACHE_ALIAS].delete(_ticker_key(market))
