"""PaperExchange: Upbit's interface over the simulated feed and the paper books (real PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections

from paper_exchange.models import PaperBalance, PaperOrder
from paper_exchange.price_feed import FixedPriceFeed, SimulatedPriceFeed
from trading.clients.exchange.errors import (
    BelowMinimumOrderError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderNotFoundError,
)
from trading.clients.exchange.paper import PaperExchange
from trading.services.config import set_value

pytestmark = pytest.mark.django_db

MARKET = "KRW-BTC"
START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A wall clock the test moves."""

    def __init__(self, moment: datetime = START) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def feed() -> FixedPriceFeed:
    return FixedPriceFeed(Decimal("97531000"))


@pytest.fixture
def exchange(feed, clock) -> PaperExchange:
    return PaperExchange(price_feed=feed, clock=clock, market=MARKET)


def balances(exchange: PaperExchange) -> dict[str, tuple[Decimal, Decimal]]:
    return {row.currency: (row.balance, row.locked) for row in exchange.get_accounts()}


def test_a_new_account_starts_with_the_configured_krw():
    set_value("paper_starting_krw", Decimal("2500000"))
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("100000000")))
    assert balances(exchange) == {"BTC": (0, 0), "KRW": (Decimal("2500000"), 0)}


def test_market_buy_and_sell_fill_at_once_with_exact_fees(exchange, feed):
    bought = exchange.place_order(
        market=MARKET, side="bid", ord_type="price", identifier="buy-1", price=Decimal(100000)
    )
    assert bought.state == "done" and bought.is_final
    assert bought.executed_volume == Decimal("0.00102531")  # 100,000 / 97,531,000 rounded down to the satoshi
    assert bought.executed_funds == Decimal("99999.50961")
    assert bought.paid_fee == Decimal("49.9997548")  # 0.05 %, rounded down to 1e-8 KRW
    assert bought.remaining_volume == 0
    assert balances(exchange) == {"BTC": (Decimal("0.00102531"), 0), "KRW": (Decimal("9899950.4906352"), 0)}
    btc = PaperBalance.objects.get(currency="BTC")
    assert btc.avg_buy_price == Decimal("97531000")

    feed.price = Decimal("98000000")
    sold = exchange.place_order(
        market=MARKET, side="ask", ord_type="market", identifier="sell-1", volume=Decimal("0.00102531")
    )
    assert (sold.state, sold.executed_volume, sold.executed_funds, sold.paid_fee) == (
        "done",
        Decimal("0.00102531"),
        Decimal("100480.38"),
        Decimal("50.24019"),
    )
    assert balances(exchange) == {"BTC": (0, 0), "KRW": (Decimal("10000380.6304452"), 0)}


def test_resting_limit_bid_fills_at_its_price_when_the_market_crosses(exchange, feed, clock):
    order = exchange.place_order(
        market=MARKET,
        side="bid",
        ord_type="limit",
        identifier="limit-1",
        price=Decimal("97000000"),
        volume=Decimal("0.01"),
    )
    assert order.state == "wait" and order.executed_volume == 0
    locked = Decimal("970000") + Decimal("485")  # value plus the fee reserve
    assert balances(exchange)["KRW"] == (Decimal("10000000") - locked, locked)
    assert [o.uuid for o in exchange.get_open_orders(MARKET)] == [order.uuid]

    clock.advance(10)
    assert exchange.get_order(uuid=order.uuid).state == "wait"  # 97,531,000 > 97,000,000: no fill

    feed.price = Decimal("96900000")
    clock.advance(10)
    filled = exchange.get_order(identifier="limit-1")
    assert (filled.state, filled.executed_volume, filled.executed_funds, filled.paid_fee) == (
        "done",
        Decimal("0.01"),
        Decimal("970000"),
        Decimal("485"),
    )
    assert balances(exchange) == {"BTC": (Decimal("0.01"), 0), "KRW": (Decimal("10000000") - locked, 0)}
    assert exchange.get_open_orders(MARKET) == []


def test_marketable_limit_order_takes_the_better_market_price_and_refunds_the_reserve(exchange):
    order = exchange.place_order(
        market=MARKET,
        side="bid",
        ord_type="limit",
        identifier="taker",
        price=Decimal("99000000"),
        volume=Decimal("0.01"),
    )
    assert order.state == "done"
    assert order.executed_funds == Decimal("975310")
    assert order.paid_fee == Decimal("487.655")
    assert balances(exchange)["KRW"] == (Decimal("10000000") - Decimal("975310") - Decimal("487.655"), 0)


def test_limit_orders_fill_partially_by_the_liquidity_of_each_step(feed, clock):
    exchange = PaperExchange(price_feed=feed, clock=clock, market=MARKET, liquidity_per_step=Decimal("0.001"))
    exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="seed", price=Decimal("500000"))
    held = balances(exchange)["BTC"][0]
    order = exchange.place_order(
        market=MARKET,
        side="ask",
        ord_type="limit",
        identifier="ask-1",
        price=Decimal("98000000"),
        volume=Decimal("0.0025"),
    )
    assert balances(exchange)["BTC"] == (held - Decimal("0.0025"), Decimal("0.0025"))

    feed.price = Decimal("98500000")
    clock.advance(10)
    partial = exchange.get_order(uuid=order.uuid)
    assert (partial.state, partial.executed_volume, partial.remaining_volume) == (
        "wait",
        Decimal("0.001"),
        Decimal("0.0015"),
    )
    assert partial.executed_funds == Decimal("98000")  # at the limit price

    clock.advance(10)
    assert exchange.get_order(uuid=order.uuid).executed_volume == Decimal("0.002")
    clock.advance(30)  # three more crossing steps, only 0.0005 left
    done = exchange.get_order(uuid=order.uuid)
    assert (done.state, done.executed_volume, done.executed_funds, done.paid_fee) == (
        "done",
        Decimal("0.0025"),
        Decimal("245000"),
        Decimal("122.5"),
    )
    assert balances(exchange)["BTC"] == (held - Decimal("0.0025"), 0)


def test_resting_orders_fill_for_crossings_between_lookups_on_the_simulated_feed(clock):
    feed = SimulatedPriceFeed()
    exchange = PaperExchange(price_feed=feed, clock=clock, market=MARKET, liquidity_per_step=Decimal("1"))
    step = feed.step_of(clock())
    path = [feed.price_at_step(step + n) for n in range(1, 361)]
    limit = (min(path) // 1000) * 1000 + 1000  # the walk dips to it at least once within the hour
    assert limit < feed.price_at_step(step)
    order = exchange.place_order(
        market=MARKET, side="bid", ord_type="limit", identifier="dip", price=limit, volume=Decimal("0.001")
    )
    assert order.state == "wait"
    clock.advance(3600)
    filled = exchange.get_order(uuid=order.uuid)
    assert filled.state == "done" and filled.executed_funds == limit * Decimal("0.001")


def test_cancel_releases_what_the_order_held(exchange):
    order = exchange.place_order(
        market=MARKET, side="bid", ord_type="limit", identifier="c-1", price=Decimal("90000000"), volume=Decimal("0.01")
    )
    cancelled = exchange.cancel_order(uuid=order.uuid)
    assert cancelled.state == "cancel" and cancelled.is_final
    assert balances(exchange)["KRW"] == (Decimal("10000000"), 0)
    with pytest.raises(InvalidRequestError, match="cannot be cancelled"):
        exchange.cancel_order(identifier="c-1")


def test_identifiers_are_unique_forever_even_after_a_refused_order(exchange):
    exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="once", price=Decimal(10000))
    with pytest.raises(InvalidRequestError, match="already been used"):
        exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="once", price=Decimal(10000))
    with pytest.raises(InsufficientFundsError):
        exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="too-big", price=Decimal(10**9))
    with pytest.raises(InvalidRequestError, match="already been used"):
        exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="too-big", price=Decimal(10000))
    with pytest.raises(OrderNotFoundError):
        exchange.get_order(identifier="too-big")  # refused, so absent: the caller may retry with a new identifier
    assert PaperOrder.objects.count() == 1


def test_insufficient_funds_and_minimum_are_refused_and_nothing_changes(exchange):
    before = balances(exchange)
    with pytest.raises(InsufficientFundsError) as bid_error:
        exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="i-1", price=Decimal("9999999"))
    assert bid_error.value.name == "insufficient_funds_bid"
    with pytest.raises(InsufficientFundsError) as ask_error:
        exchange.place_order(market=MARKET, side="ask", ord_type="market", identifier="i-2", volume=Decimal("0.01"))
    assert ask_error.value.name == "insufficient_funds_ask"
    with pytest.raises(BelowMinimumOrderError, match="below the minimum of 5000"):
        exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="i-3", price=Decimal("4999"))
    with pytest.raises(BelowMinimumOrderError):
        exchange.place_order(
            market=MARKET,
            side="ask",
            ord_type="limit",
            identifier="i-4",
            price=Decimal("97000000"),
            volume=Decimal("0.00005"),
        )
    assert balances(exchange) == before
    assert PaperOrder.objects.count() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"side": "buy", "ord_type": "price", "price": Decimal(10000)}, "side must be bid or ask"),
        ({"side": "bid", "ord_type": "market", "volume": Decimal(1)}, "not valid for side bid"),
        ({"side": "bid", "ord_type": "price", "price": Decimal(10000), "volume": Decimal(1)}, "takes no volume"),
        ({"side": "ask", "ord_type": "market", "price": Decimal(1), "volume": Decimal(1)}, "takes no price"),
        ({"side": "bid", "ord_type": "limit", "price": Decimal("97000500"), "volume": Decimal(1)}, "multiple of 1000"),
        (
            {"side": "bid", "ord_type": "limit", "price": Decimal("97000000"), "volume": Decimal("0.000000001")},
            "8 decimals",
        ),
        ({"side": "bid", "ord_type": "limit", "price": "abc", "volume": Decimal(1)}, "must be a number"),
        ({"side": "bid", "ord_type": "limit", "price": Decimal("-1"), "volume": Decimal(1)}, "must be positive"),
        ({"side": "bid", "ord_type": "price", "price": Decimal(10000), "market": "KRW-ETH"}, "not traded"),
    ],
)
def test_malformed_orders_are_refused_with_a_clear_error_without_using_the_identifier(exchange, arguments, message):
    arguments = {"market": MARKET, **arguments}
    with pytest.raises(InvalidRequestError, match=message):
        exchange.place_order(identifier="bad", **arguments)
    exchange.place_order(market=MARKET, side="bid", ord_type="price", identifier="bad", price=Decimal(10000))


def test_unknown_orders_are_not_found(exchange):
    with pytest.raises(OrderNotFoundError):
        exchange.get_order(uuid="8c5b6f4a-2b7e-4d43-9d5c-0d1fbb1e5a11")
    with pytest.raises(OrderNotFoundError):
        exchange.get_order(uuid="not-a-uuid")
    with pytest.raises(OrderNotFoundError):
        exchange.cancel_order(identifier="never-sent")
    with pytest.raises(InvalidRequestError):
        exchange.get_order()


def test_state_survives_a_restart(feed, clock):
    first = PaperExchange(price_feed=feed, clock=clock, market=MARKET)
    bought = first.place_order(market=MARKET, side="bid", ord_type="price", identifier="r-1", price=Decimal(200000))
    resting = first.place_order(
        market=MARKET,
        side="bid",
        ord_type="limit",
        identifier="r-2",
        price=Decimal("90000000"),
        volume=Decimal("0.001"),
    )
    expected = balances(first)

    restarted = PaperExchange(price_feed=FixedPriceFeed(feed.price), clock=clock, market=MARKET)
    assert balances(restarted) == expected
    assert restarted.get_order(identifier="r-1") == bought
    assert [order.uuid for order in restarted.get_open_orders(MARKET)] == [resting.uuid]
    with pytest.raises(InvalidRequestError):
        restarted.place_order(market=MARKET, side="bid", ord_type="price", identifier="r-1", price=Decimal(10000))


def test_order_chance_reports_upbit_fees_minimum_and_free_balances(exchange):
    exchange.place_order(
        market=MARKET, side="bid", ord_type="limit", identifier="o-1", price=Decimal("90000000"), volume=Decimal("0.01")
    )
    chance = exchange.get_order_chance(MARKET)
    assert (chance.bid_fee, chance.ask_fee, chance.min_total) == (Decimal("0.0005"), Decimal("0.0005"), Decimal("5000"))
    assert chance.bid_balance == Decimal("10000000") - Decimal("900450")
    assert chance.ask_balance == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_buys_never_spend_the_same_krw_twice(feed, clock):
    set_value("paper_starting_krw", Decimal("150000"))
    PaperExchange(price_feed=feed, clock=clock, market=MARKET).get_accounts()  # the account exists
    results: list[str] = []
    barrier = threading.Barrier(6)

    def buy(number: int) -> None:
        try:
            barrier.wait()
            PaperExchange(price_feed=feed, clock=clock, market=MARKET).place_order(
                market=MARKET, side="bid", ord_type="price", identifier=f"race-{number}", price=Decimal(100000)
            )
            results.append("filled")
        except InsufficientFundsError:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["filled"] + ["refused"] * 5
    krw = PaperBalance.objects.get(currency="KRW")
    assert krw.balance == Decimal("150000") - Decimal("99999.50961") - Decimal("49.9997548")


def test_ticker_and_candles_come_from_the_same_feed(clock):
    feed = SimulatedPriceFeed()
    exchange = PaperExchange(price_feed=feed, clock=clock, market=MARKET)
    ticker = exchange.get_ticker(MARKET)
    assert ticker.trade_price == feed.price_at(clock())
    assert ticker.opening_price == feed.price_at(START.replace(hour=0))
    assert ticker.low_price <= min(ticker.trade_price, ticker.opening_price)
    assert ticker.high_price >= max(ticker.trade_price, ticker.opening_price)
    assert ticker.signed_change_rate == ((ticker.trade_price - ticker.opening_price) / ticker.opening_price).quantize(
        Decimal("0.00000001")
    )

    candles = exchange.get_minute_candles(MARKET, unit=1, count=5)
    assert [c.timestamp for c in candles] == [START - timedelta(minutes=n) for n in (4, 3, 2, 1, 0)]  # oldest first
    assert candles[-1].trade_price == ticker.trade_price  # the forming candle closes at the current price
    assert candles[-2].trade_price == feed.price_at(START - timedelta(seconds=1))
    assert candles[-2].opening_price == feed.price_at(START - timedelta(minutes=1))
    for candle in candles:
        assert candle.low_price <= min(candle.opening_price, candle.trade_price)
        assert candle.high_price >= max(candle.opening_price, candle.trade_price)
        assert candle.volume > 0

    earlier = exchange.get_minute_candles(MARKET, unit=60, count=3, to=START)
    assert [c.timestamp for c in earlier] == [START - timedelta(hours=n) for n in (3, 2, 1)]
    assert earlier[-1].opening_price == feed.price_at(START - timedelta(hours=1))
    assert (
        PaperExchange(price_feed=SimulatedPriceFeed(), clock=clock, market=MARKET).get_minute_candles(
            MARKET, unit=60, count=3, to=START
        )
        == earlier
    )

    with pytest.raises(InvalidRequestError):
        exchange.get_minute_candles(MARKET, unit=7)
    with pytest.raises(InvalidRequestError):
        exchange.get_minute_candles(MARKET, count=201)
    with pytest.raises(InvalidRequestError):
        exchange.get_ticker("KRW-ETH")
