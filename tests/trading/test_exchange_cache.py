"""The 10 s exchange cache: hits, misses, expiry, invalidation, Decimal-exact values."""

from __future__ import annotations

import pickle
import time
from decimal import Decimal

import pytest
from django.core.cache import caches
from prometheus_client import REGISTRY

from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY
from trading.clients.exchange import reset_exchange
from trading.clients.exchange.upbit import UpbitExchange
from trading.services import cache_stats, exchange_cache

MARKET = "KRW-BTC"


@pytest.fixture
def upbit(fake_upbit):
    client = UpbitExchange(TEST_ACCESS_KEY, TEST_SECRET_KEY, fake_upbit.url, close_at_exit=False)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _fresh_stats():
    cache_stats.reset()
    yield
    cache_stats.reset()


def _metric(namespace: str, result: str) -> float:
    return REGISTRY.get_sample_value("cache_requests_total", {"namespace": namespace, "result": result}) or 0.0


def test_ticker_is_fetched_once_then_served_from_cache(fake_upbit, upbit):
    hits_before = _metric("ticker", "hit")

    first = exchange_cache.get_ticker(MARKET, exchange=upbit)
    fake_upbit.set_price(Decimal("1"))
    second = exchange_cache.get_ticker(MARKET, exchange=upbit)
    third = exchange_cache.get_ticker(MARKET, exchange=upbit)

    assert first == second == third
    assert len(fake_upbit.calls("/v1/ticker")) == 1
    assert cache_stats.process_counts("ticker") == {"hits": 2, "misses": 1, "hit_rate": 66.67}
    assert _metric("ticker", "hit") - hits_before == 2


def test_cached_values_are_decimal_exact_dataclasses(fake_upbit, upbit):
    fake_upbit.set_price(Decimal("123456789.5"))

    exchange_cache.get_ticker(MARKET, exchange=upbit)
    cached = exchange_cache.get_ticker(MARKET, exchange=upbit)
    balances = exchange_cache.get_balances(exchange=upbit)

    assert cached.trade_price == Decimal("123456789.5")
    assert pickle.loads(pickle.dumps(cached)) == cached
    assert {balance.currency: balance.balance for balance in balances} == {
        "KRW": Decimal("1000000"),
        "BTC": Decimal("0.01"),
    }


def test_entries_expire_after_their_ttl(fake_upbit, upbit):
    exchange_cache.get_ticker(MARKET, exchange=upbit, timeout=0.2)
    exchange_cache.get_ticker(MARKET, exchange=upbit, timeout=0.2)
    time.sleep(0.3)
    exchange_cache.get_ticker(MARKET, exchange=upbit, timeout=0.2)

    assert len(fake_upbit.calls("/v1/ticker")) == 2
    assert cache_stats.process_counts("ticker")["misses"] == 2


def test_the_exchange_alias_keeps_values_10_seconds_by_default():
    assert caches["exchange"].default_timeout == 10


def test_invalidate_balances_forces_a_fresh_read(fake_upbit, upbit):
    exchange_cache.get_balances(exchange=upbit)
    exchange_cache.get_order_chance(MARKET, exchange=upbit)
    upbit.place_order(market=MARKET, side="bid", ord_type="price", identifier="c-1", price=Decimal("10000"))
    stale = exchange_cache.get_balances(exchange=upbit)

    exchange_cache.invalidate_balances()
    fresh = exchange_cache.get_balances(exchange=upbit)
    chance = exchange_cache.get_order_chance(MARKET, exchange=upbit)

    assert exchange_cache.get_balance("KRW", exchange=upbit).balance == fresh[0].balance
    assert {b.currency: b.balance for b in stale}["KRW"] == Decimal("1000000")
    assert {b.currency: b.balance for b in fresh}["KRW"] < Decimal("1000000")
    assert chance.bid_balance == {b.currency: b.balance for b in fresh}["KRW"]
    assert len(fake_upbit.calls("/v1/accounts")) == 2
    assert len(fake_upbit.calls("/v1/orders/chance")) == 2
    assert cache_stats.process_counts("balance")["misses"] == 2


def test_failures_are_not_cached(fake_upbit, upbit):
    from tests.fakes.http import Fault
    from trading.clients.exchange.errors import InvalidRequestError

    fake_upbit.add_fault(Fault.status(400, {"error": {"name": "x", "message": "no"}}), path="/v1/ticker")
    with pytest.raises(InvalidRequestError):
        exchange_cache.get_ticker(MARKET, exchange=upbit)

    assert exchange_cache.get_ticker(MARKET, exchange=upbit).market == MARKET


def test_without_an_injected_exchange_the_factory_is_used(upbit_settings, fake_upbit):
    reset_exchange()
    try:
        ticker = exchange_cache.get_ticker(MARKET)
    finally:
        reset_exchange()

    assert ticker.market == MARKET
    assert len(fake_upbit.calls("/v1/ticker")) == 1
