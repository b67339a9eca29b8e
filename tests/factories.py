"""Row builders shared by every test that needs stored market data (not fakes: plain model rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trading.models import MarketData

MARKET = "KRW-BTC"


def market_data(price: Decimal, at: dt.datetime, **overrides: Any) -> MarketData:
    """An unsaved flat sample: open = high = low = ``price``, volume 1, no change; ``overrides`` win."""
    fields: dict[str, Any] = {
        "symbol": MARKET,
        "trade_price": price,
        "opening_price": price,
        "high_price": price,
        "low_price": price,
        "trade_volume": Decimal("1"),
        "change_rate": Decimal("0"),
        "timestamp": at,
    }
    return MarketData(**(fields | overrides))


def make_market_data(price: Decimal, at: dt.datetime, **overrides: Any) -> MarketData:
    """One stored sample (see ``market_data``)."""
    row = market_data(price, at, **overrides)
    row.save(force_insert=True)
    return row


def bulk_market_data(
    prices_and_times: Iterable[tuple[Decimal, dt.datetime]], *, batch_size: int | None = None, **overrides: Any
) -> list[MarketData]:
    """Many stored samples in one ``bulk_create`` (one per ``(price, at)``; ``overrides`` apply to each)."""
    rows = [market_data(price, at, **overrides) for price, at in prices_and_times]
    return MarketData.objects.bulk_create(rows, batch_size=batch_size)
