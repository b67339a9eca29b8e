"""Helpers shared by the order-execution, reconciliation and crash tests (not fakes: builders and wrappers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection

from paper_exchange.price_feed import FixedPriceFeed
from trading.clients.exchange.base import Exchange
from trading.clients.exchange.paper import PaperExchange
from trading.models import TradingSignal

PRICE = Decimal("100000000")


def make_signal(signal_type: str = "BUY", confidence: str = "0.9") -> TradingSignal:
    return TradingSignal.objects.create(
        signal_type=signal_type, confidence=Decimal(confidence), provider="test", model_name="test"
    )


def paper_exchange(price: Decimal = PRICE) -> PaperExchange:
    return PaperExchange(price_feed=FixedPriceFeed(price), starting_krw=lambda: Decimal("10000000"))


class RecordingExchange(Exchange):
    """Delegates to a real exchange and records, per call, whether a DB connection or transaction was held.

    ``fail`` maps a method name to an exception (or a callable raising one) used instead of — or,
    with ``after=True`` semantics via ``fail_after``, after — the real call.
    """

    def __init__(self, inner: Exchange) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[tuple[str, bool, bool]] = []  # (method, connection checked out, in transaction)
        self.fail: dict[str, BaseException] = {}
        self.fail_after: dict[str, BaseException] = {}
        self.order_states: list[str] = []  # states to report from get_order before the real one

    def _record(self, method: str) -> None:
        self.calls.append((method, connection.connection is not None, connection.in_atomic_block))

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self._record(method)
        if method in self.fail:
            raise self.fail.pop(method)
        result = getattr(self.inner, method)(*args, **kwargs)
        if method in self.fail_after:
            raise self.fail_after.pop(method)
        return result

    def get_ticker(self, market):
        return self._call("get_ticker", market)

    def get_minute_candles(self, market, unit=1, count=200, to=None):
        return self._call("get_minute_candles", market, unit, count, to)

    def get_accounts(self):
        return self._call("get_accounts")

    def get_order_chance(self, market):
        return self._call("get_order_chance", market)

    def place_order(self, **kwargs):
        return self._call("place_order", **kwargs)

    def get_order(self, **kwargs):
        return self._call("get_order", **kwargs)

    def get_open_orders(self, market):
        return self._call("get_open_orders", market)

    def cancel_order(self, **kwargs):
        return self._call("cancel_order", **kwargs)

    def order_calls(self) -> list[tuple[str, bool, bool]]:
        return [call for call in self.calls if call[0] in ("place_order", "get_order")]
