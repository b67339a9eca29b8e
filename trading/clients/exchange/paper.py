"""The paper exchange: Upbit's interface, no network, books kept in our database.

Why: ``make run`` must trade end to end offline. Prices come from a
deterministic simulated feed (``paper_exchange.price_feed``) that every process
computes identically from the wall clock; balances and orders live in the
``paper_exchange`` app's tables, so a restart keeps them. Matching rules
(fees, minimum, fills) are documented in ``paper_exchange.services``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from paper_exchange import services
from paper_exchange.models import PaperAccount, PaperOrder
from paper_exchange.price_feed import STEP_SECONDS, PriceFeed, SimulatedPriceFeed
from trading.clients.exchange.base import Balance, Candle, Exchange, ExchangeOrder, OrderChance, Ticker
from trading.clients.exchange.errors import InvalidRequestError

CANDLE_UNITS = frozenset({1, 3, 5, 10, 15, 30, 60, 240})
MAX_CANDLES = 200
SAMPLES_PER_CANDLE = 12
TICKER_SAMPLE_STEPS = 30  # the day's high/low are sampled every 5 minutes (plus open and now)


def _starting_krw() -> Decimal:
    from trading.services.config import get_value

    return get_value("paper_starting_krw")


def _pseudo_volume(market: str, step: int, scale: Decimal) -> Decimal:
    """A deterministic, plausible traded volume (BTC) for the step: ``scale`` times [0.5, 1.5)."""
    digest = hashlib.blake2b(f"{market}:volume:{step}".encode(), digest_size=4).digest()
    fraction = Decimal(int.from_bytes(digest, "big")) / Decimal(2**32)
    return (scale * (Decimal("0.5") + fraction)).quantize(services.SATOSHI)


class PaperExchange(Exchange):
    """``Exchange`` over the simulated feed and the paper books.

    ``price_feed`` and ``clock`` are injectable so tests pin the market;
    ``liquidity_per_step`` caps how much a resting limit order fills per 10 s step.
    """

    name = "paper"

    def __init__(
        self,
        *,
        price_feed: PriceFeed | None = None,
        clock: Callable[[], datetime] = timezone.now,
        market: str | None = None,
        account_name: str = services.DEFAULT_ACCOUNT,
        liquidity_per_step: Decimal = services.DEFAULT_LIQUIDITY_PER_STEP,
        starting_krw: Callable[[], Decimal] = _starting_krw,
    ) -> None:
        self.price_feed = price_feed or SimulatedPriceFeed()
        self.clock = clock
        self.market = market or settings.TRADING_MARKET
        self.account_name = account_name
        self.liquidity_per_step = liquidity_per_step
        self._starting_krw = starting_krw

    # -- helpers ----------------------------------------------------------------------
    def _account(self) -> PaperAccount:
        return services.ensure_account(self._starting_krw, self.account_name)

    def _state(self) -> services.MarketState:
        now = self.clock()
        step = self.price_feed.step_of(now)
        return services.MarketState(
            step=step, price=self.price_feed.price_at(now), now=now, price_at_step=self.price_feed.price_at_step
        )

    def _check_market(self, market: str) -> None:
        if market != self.market:
            raise InvalidRequestError(f"market {market} is not traded on the paper exchange", name="invalid_market")

    def _matched(self) -> PaperAccount:
        """The account after resting orders have been matched up to now (fills are computed lazily)."""
        account = self._account()
        services.match_open_orders(account, self.market, self._state(), self.liquidity_per_step)
        return account

    @staticmethod
    def _to_exchange_order(order: PaperOrder) -> ExchangeOrder:
        remaining = Decimal("0") if order.volume is None else order.volume - order.executed_volume
        if order.state != PaperOrder.State.WAIT and order.ord_type != "limit":
            remaining = Decimal("0")
        return ExchangeOrder(
            uuid=str(order.uuid),
            identifier=order.identifier,
            market=order.market,
            side=order.side,
            ord_type=order.ord_type,
            state=order.state,
            price=order.price,
            volume=order.volume,
            remaining_volume=remaining,
            executed_volume=order.executed_volume,
            executed_funds=order.executed_funds,
            paid_fee=order.paid_fee,
            created_at=order.created_at,
        )

    # -- market data ----------------------------------------------------------------
    def current_price(self) -> Decimal:
        return self.price_feed.price_at(self.clock())

    def get_ticker(self, market: str) -> Ticker:
        self._check_market(market)
        now = self.clock()
        step = self.price_feed.step_of(now)
        day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        first = self.price_feed.step_of(day_start)
        price = self.price_feed.price_at(now)
        opening = self.price_feed.price_at_step(first)
        samples = [opening, price] + [
            self.price_feed.price_at_step(sample) for sample in range(first, step, TICKER_SAMPLE_STEPS)
        ]
        volume = _pseudo_volume(market, now.toordinal(), Decimal("2500"))
        return Ticker(
            market=market,
            trade_price=price,
            opening_price=opening,
            high_price=max(samples),
            low_price=min(samples),
            acc_trade_volume_24h=volume,
            signed_change_rate=((price - opening) / opening).quantize(Decimal("0.00000001")),
            timestamp=now,
        )

    def get_minute_candles(
        self, market: str, unit: int = 1, count: int = 200, to: datetime | None = None
    ) -> list[Candle]:
        """Oldest first (as ``UpbitExchange`` returns them); ``to`` is exclusive; without it the forming candle is last."""
        self._check_market(market)
        if unit not in CANDLE_UNITS:
            raise InvalidRequestError(f"unit must be one of {sorted(CANDLE_UNITS)}", name="invalid_unit", status=400)
        if not 1 <= count <= MAX_CANDLES:
            raise InvalidRequestError(f"count must be 1 to {MAX_CANDLES}", name="invalid_count", status=400)
        now = self.clock()
        end = min(to, now) if to is not None else now
        width = timedelta(minutes=unit)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        reference = end - timedelta(microseconds=1) if to is not None and to <= now else end
        start = epoch + ((reference - epoch) // width) * width
        now_step = self.price_feed.step_of(now)
        candles = []
        for index in range(count):
            candle_start = start - index * width
            first = self.price_feed.step_of(candle_start)
            last = min(self.price_feed.step_of(candle_start + width) - 1, now_step)
            stride = max(1, (last - first) // SAMPLES_PER_CANDLE)
            steps = sorted({*range(first, last + 1, stride), last})
            prices = [self.price_feed.price_at_step(step) for step in steps]
            candles.append(
                Candle(
                    market=market,
                    timestamp=candle_start,
                    opening_price=prices[0],
                    high_price=max(prices),
                    low_price=min(prices),
                    trade_price=prices[-1],
                    volume=_pseudo_volume(market, first, Decimal("0.3") * (last - first + 1) * STEP_SECONDS / 60),
                )
            )
        return candles[::-1]

    # -- account --------------------------------------------------------------------
    def get_accounts(self) -> list[Balance]:
        account = self._matched()
        return [
            Balance(currency=row.currency, balance=row.balance, locked=row.locked, avg_buy_price=row.avg_buy_price)
            for row in services.list_balances(account)
        ]

    def get_order_chance(self, market: str) -> OrderChance:
        self._check_market(market)
        quote, base = market.split("-", 1)
        free = {balance.currency: balance.balance for balance in self.get_accounts()}
        return OrderChance(
            market=market,
            bid_fee=services.FEE_RATE,
            ask_fee=services.FEE_RATE,
            min_total=services.MIN_TOTAL_KRW,
            bid_balance=free.get(quote, Decimal("0")),
            ask_balance=free.get(base, Decimal("0")),
        )

    # -- orders ---------------------------------------------------------------------
    def place_order(
        self,
        *,
        market: str,
        side: str,
        ord_type: str,
        identifier: str,
        price: Decimal | None = None,
        volume: Decimal | None = None,
    ) -> ExchangeOrder:
        account = self._matched()
        state = self._state()
        price, volume = services.validate_order(
            market=market,
            supported_market=self.market,
            side=side,
            ord_type=ord_type,
            price=price,
            volume=volume,
            market_price=state.price,
        )
        services.consume_identifier(identifier)
        order = services.place_order(
            account,
            state,
            market=market,
            side=side,
            ord_type=ord_type,
            identifier=identifier,
            price=price,
            volume=volume,
            liquidity_per_step=self.liquidity_per_step,
        )
        return self._to_exchange_order(order)

    def get_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder:
        account = self._account()
        order = services.find_order(account, uuid=uuid, identifier=identifier)
        if order.state == PaperOrder.State.WAIT:
            services.match_open_orders(account, order.market, self._state(), self.liquidity_per_step, only=order)
            order.refresh_from_db()
        return self._to_exchange_order(order)

    def get_open_orders(self, market: str) -> list[ExchangeOrder]:
        self._check_market(market)
        account = self._matched()
        return [self._to_exchange_order(order) for order in services.list_open_orders(account, market)]

    def cancel_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder:
        account = self._matched()
        order = services.find_order(account, uuid=uuid, identifier=identifier)
        return self._to_exchange_order(services.cancel_order(account, order))
