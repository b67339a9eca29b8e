"""collect_market_data: one Decimal-exact row per ticker, no duplicate timestamps, no transaction across the call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from paper_exchange.price_feed import FixedPriceFeed
from trading.clients.exchange.base import Ticker
from trading.clients.exchange.errors import ExchangeError
from trading.clients.exchange.paper import PaperExchange
from trading.models import MarketData
from trading.services.market_data import collect_market_data

pytestmark = pytest.mark.django_db
MOMENT = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)


class FakeTickerExchange:
    """The ticker part of the Exchange interface, recording whether a transaction was open during the call."""

    def __init__(self, timestamp: datetime = MOMENT) -> None:
        self.timestamp = timestamp
        self.in_transaction_during_call: list[bool] = []
        self.error: Exception | None = None

    def get_ticker(self, market: str) -> Ticker:
        self.in_transaction_during_call.append(connection.in_atomic_block and not connection.get_autocommit())
        if self.error:
            raise self.error
        return Ticker(
            market=market,
            trade_price=Decimal("143250000.12345678"),
            opening_price=Decimal("142000000"),
            high_price=Decimal("144000000.5"),
            low_price=Decimal("141500000"),
            acc_trade_volume_24h=Decimal("2411.12345678"),
            signed_change_rate=Decimal("-0.00880282"),
            timestamp=self.timestamp,
        )


def test_paper_exchange_ticker_is_stored_decimal_exact():
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("98765432.10987654")), clock=lambda: MOMENT)
    row = collect_market_data(exchange=exchange)
    stored = MarketData.objects.get(pk=row.pk)
    ticker = exchange.get_ticker("KRW-BTC")
    assert stored.symbol == "KRW-BTC"
    assert stored.trade_price == Decimal("98765432.10987654") == ticker.trade_price
    assert isinstance(stored.trade_price, Decimal)
    assert stored.high_price == ticker.high_price and stored.low_price == ticker.low_price
    assert stored.trade_volume == ticker.acc_trade_volume_24h
    assert stored.change_rate == ticker.signed_change_rate
    assert stored.timestamp == MOMENT


def test_fake_exchange_row_keeps_every_field():
    exchange = FakeTickerExchange()
    collect_market_data(exchange=exchange)
    row = MarketData.objects.get()
    assert (row.trade_price, row.high_price, row.trade_volume, row.change_rate) == (
        Decimal("143250000.12345678"),
        Decimal("144000000.5"),
        Decimal("2411.12345678"),
        Decimal("-0.00880282"),
    )


def test_the_same_exchange_timestamp_is_not_stored_twice():
    exchange = FakeTickerExchange()
    assert collect_market_data(exchange=exchange) is not None
    assert collect_market_data(exchange=exchange) is None
    exchange.timestamp = MOMENT + timedelta(seconds=10)
    assert collect_market_data(exchange=exchange) is not None
    assert MarketData.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_during_the_exchange_call_and_a_failure_stores_nothing():
    exchange = FakeTickerExchange()
    collect_market_data(exchange=exchange)
    assert exchange.in_transaction_during_call == [False]
    exchange.error = ExchangeError("down")
    with pytest.raises(ExchangeError):
        collect_market_data(exchange=exchange)
    assert MarketData.objects.count() == 1


def test_default_exchange_is_the_process_exchange(settings):
    from trading.clients.exchange import get_exchange

    row = collect_market_data()
    assert row.symbol == settings.TRADING_MARKET
    assert get_exchange().name == "paper"
    assert isinstance(row.trade_price, Decimal) and row.trade_price > 0


# ---------------------------------------------------------------- backfill_market_data

BACKFILL_NOW = datetime(2026, 11, 23, 12, 7, 30, tzinfo=UTC)


class CandleRecorder:
    """Wraps a paper exchange's candles; records each call and whether a transaction or connection was held."""

    def __init__(self, inner: PaperExchange) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int, datetime | None]] = []
        self.held: list[tuple[bool, bool]] = []  # (connection checked out, in transaction)
        self.error: Exception | None = None

    def get_minute_candles(self, market, unit=1, count=200, to=None):
        self.calls.append((unit, count, to))
        self.held.append((connection.connection is not None, connection.in_atomic_block))
        if self.error:
            raise self.error
        return self.inner.get_minute_candles(market, unit, count, to)


def simulated_exchange() -> CandleRecorder:
    from paper_exchange.price_feed import SimulatedPriceFeed

    return CandleRecorder(PaperExchange(price_feed=SimulatedPriceFeed(), clock=lambda: BACKFILL_NOW))


def test_backfill_fills_the_sampler_ranges_and_a_second_call_inserts_nothing():
    from trading.services.market_data import backfill_market_data
    from trading.services.sampling import MarketDataSampler

    exchange = simulated_exchange()
    inserted = backfill_market_data(exchange=exchange, now=BACKFILL_NOW)
    # 336 hourly + 96 quarter-hourly (24 h) + 67 one-minute candles (11:00 to the forming 12:07)
    assert inserted == 336 + 96 + 67 == MarketData.objects.count()
    ranges = MarketDataSampler().sample_ranges(now=BACKFILL_NOW)
    # Every bucket the sampler asks for is filled, except the forming minute (12:07) the collector adds; the
    # sampler's long range spans 335 whole hours when its mid range starts on the hour, as here.
    assert (len(ranges.long), len(ranges.mid), len(ranges.short)) == (335, 96, 11)

    exchange.calls.clear()
    assert backfill_market_data(exchange=exchange, now=BACKFILL_NOW) == 0
    assert exchange.calls == []  # complete ranges are not even fetched
    assert MarketData.objects.count() == inserted


def test_backfill_pages_the_hourly_range_by_200_with_to():
    from trading.services.market_data import backfill_market_data

    exchange = simulated_exchange()
    backfill_market_data(exchange=exchange, now=BACKFILL_NOW)
    hourly = [call for call in exchange.calls if call[0] == 60]
    mid_start = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    assert hourly == [(60, 200, mid_start), (60, 136, mid_start - timedelta(hours=200))]
    assert [call[0] for call in exchange.calls] == [60, 60, 15, 1]


def test_backfilled_rows_are_candle_closes_decimal_exact_with_change_rates():
    from trading.services.market_data import backfill_market_data

    exchange = simulated_exchange()
    backfill_market_data(exchange=exchange, now=BACKFILL_NOW, days=1)
    candles = exchange.inner.get_minute_candles("KRW-BTC", 60, 24, datetime(2026, 11, 22, 11, 0, tzinfo=UTC))
    rows = list(MarketData.objects.order_by("timestamp")[:24])
    assert [row.timestamp for row in rows] == [candle.timestamp for candle in candles]
    for row, candle in zip(rows, candles, strict=True):
        assert (row.trade_price, row.opening_price, row.high_price, row.low_price) == (
            candle.trade_price,
            candle.opening_price,
            candle.high_price,
            candle.low_price,
        )
        assert row.trade_volume == candle.volume
    assert rows[0].change_rate == 0
    expected = ((rows[1].trade_price - rows[0].trade_price) / rows[0].trade_price).quantize(Decimal("0.00000001"))
    assert rows[1].change_rate == expected and isinstance(rows[1].change_rate, Decimal)


def test_backfill_skips_buckets_that_already_hold_rows():
    from trading.services.market_data import backfill_market_data

    exchange = simulated_exchange()
    ticker_moment = datetime(2026, 11, 23, 12, 3, 20, tzinfo=UTC)  # inside the 12:03 one-minute bucket
    collect_market_data(exchange=FakeTickerExchange(timestamp=ticker_moment))
    inserted = backfill_market_data(exchange=exchange, now=BACKFILL_NOW)
    assert inserted == 336 + 96 + 67 - 1
    assert (
        MarketData.objects.filter(timestamp__gte=datetime(2026, 11, 23, 12, 3, tzinfo=UTC))
        .filter(timestamp__lt=datetime(2026, 11, 23, 12, 4, tzinfo=UTC))
        .count()
        == 1
    )


def test_backfill_is_bounded_keeping_the_newest_rows():
    from trading.services.market_data import backfill_market_data

    assert backfill_market_data(exchange=simulated_exchange(), now=BACKFILL_NOW, max_rows=100) == 100
    newest = MarketData.objects.order_by("-timestamp").first()
    assert newest.timestamp == datetime(2026, 11, 23, 12, 6, tzinfo=UTC)
    with pytest.raises(ValueError):
        backfill_market_data(exchange=simulated_exchange(), now=BACKFILL_NOW, days=400)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_connection_is_held_during_candle_calls_and_a_failure_stores_nothing():
    from trading.services.market_data import backfill_market_data

    exchange = simulated_exchange()
    backfill_market_data(exchange=exchange, now=BACKFILL_NOW)
    assert exchange.held and all(held == (False, False) for held in exchange.held)

    MarketData.objects.all().delete()
    failing = simulated_exchange()
    failing.error = ExchangeError("down")
    with pytest.raises(ExchangeError):
        backfill_market_data(exchange=failing, now=BACKFILL_NOW)
    assert MarketData.objects.count() == 0


def test_backfill_command_reports_rows_and_rejects_bad_days():
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("backfill_market_data", "--days", "2", stdout=out)
    first = MarketData.objects.count()
    assert first > 2 * 24 and f"Backfilled {first} " in out.getvalue()
    with pytest.raises(CommandError, match="--days"):
        call_command("backfill_market_data", "--days", "0")
