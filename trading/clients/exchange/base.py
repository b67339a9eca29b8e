"""The exchange interface the trading logic talks to (Upbit or the paper exchange).

Amounts are ``Decimal``; times are aware UTC datetimes. Order states follow
Upbit: ``wait`` / ``watch`` (open), ``done`` (filled), ``cancel`` (cancelled,
possibly after partial fills).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

OPEN_STATES = frozenset({"wait", "watch"})
FINAL_STATES = frozenset({"done", "cancel"})


@dataclass(frozen=True)
class Ticker:
    market: str
    trade_price: Decimal
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    acc_trade_volume_24h: Decimal
    signed_change_rate: Decimal
    timestamp: datetime


@dataclass(frozen=True)
class Candle:
    market: str
    timestamp: datetime  # candle start, UTC
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    trade_price: Decimal  # close
    volume: Decimal


@dataclass(frozen=True)
class Balance:
    currency: str
    balance: Decimal  # free
    locked: Decimal
    avg_buy_price: Decimal


@dataclass(frozen=True)
class OrderChance:
    market: str
    bid_fee: Decimal  # e.g. Decimal("0.0005")
    ask_fee: Decimal
    min_total: Decimal  # minimum order value in KRW
    bid_balance: Decimal  # free KRW
    ask_balance: Decimal  # free BTC


@dataclass(frozen=True)
class ExchangeOrder:
    uuid: str
    identifier: str | None
    market: str
    side: str  # "bid" | "ask"
    ord_type: str  # "limit" | "price" | "market"
    state: str  # "wait" | "watch" | "done" | "cancel"
    price: Decimal | None
    volume: Decimal | None
    remaining_volume: Decimal
    executed_volume: Decimal
    executed_funds: Decimal  # KRW value of the fills
    paid_fee: Decimal
    created_at: datetime

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class Exchange(ABC):
    """What the trading logic may ask of an exchange."""

    name: str = "exchange"

    @abstractmethod
    def get_ticker(self, market: str) -> Ticker: ...

    @abstractmethod
    def get_minute_candles(
        self, market: str, unit: int = 1, count: int = 200, to: datetime | None = None
    ) -> list[Candle]: ...

    @abstractmethod
    def get_accounts(self) -> list[Balance]: ...

    @abstractmethod
    def get_order_chance(self, market: str) -> OrderChance: ...

    @abstractmethod
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
        """Place an order under ``identifier``; never blindly retried (see errors)."""

    @abstractmethod
    def get_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder:
        """Raise ``OrderNotFoundError`` when the exchange has no such order."""

    @abstractmethod
    def get_open_orders(self, market: str) -> list[ExchangeOrder]: ...

    @abstractmethod
    def cancel_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release network resources (sessions)."""
