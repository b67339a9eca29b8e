"""Read-side queries of the trading domain (the API and dashboards read through these).

Every function takes already-validated arguments and returns plain values or
querysets; nothing here writes. Lists use keyset pagination on
``(timestamp|created_at, id)`` so that a page never needs a ``COUNT(*)`` or an
``OFFSET`` over a month of data, and the window statistics are aggregated by
the database instead of being computed over rows loaded into Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Max, Min, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from trading.config_schema import DEFINITIONS
from trading.models import MarketData, Order, Position, SystemConfig, TradingSignal
from trading.services import config as config_service

PRICE_QUANTUM = Decimal("0.00000001")
PERCENT_QUANTUM = Decimal("0.0001")
COST_QUANTUM = Decimal("0.0001")
ZERO = Decimal("0")

#: Columns a history page returns (``.values()`` keeps a 100-row page cheap).
HISTORY_FIELDS = (
    "id",
    "timestamp",
    "trade_price",
    "opening_price",
    "high_price",
    "low_price",
    "trade_volume",
    "change_rate",
)
SIGNAL_LIST_FIELDS = (
    "id",
    "signal_type",
    "confidence",
    "reasoning",
    "provider",
    "model_name",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "market_data_id",
    "created_at",
)


@dataclass(frozen=True)
class Cursor:
    """Position after the last row of a page: its time and id (the tie-breaker)."""

    moment: dt.datetime
    row_id: int


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: Cursor | None


def _keyset(queryset: QuerySet, time_field: str, cursor: Cursor | None) -> QuerySet:
    """Rows strictly after ``cursor`` in (time desc, id desc) order.

    ``time <= moment`` is the index condition; the OR only filters the rows of
    the boundary instant, so the scan stays on the time index.
    """
    if cursor is None:
        return queryset
    return queryset.filter(**{f"{time_field}__lte": cursor.moment}).filter(
        Q(**{f"{time_field}__lt": cursor.moment}) | Q(id__lt=cursor.row_id)
    )


def _page(queryset: QuerySet, limit: int, time_of: Any) -> Page:
    """Evaluate ``limit + 1`` rows: the extra one only says whether a next page exists."""
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return Page(rows=rows, next_cursor=None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows=rows, next_cursor=Cursor(moment=time_of(last), row_id=_id_of(last)))


def _id_of(row: Any) -> int:
    return row["id"] if isinstance(row, dict) else row.pk


# --- market data -----------------------------------------------------------------------------


def latest_market_data(symbol: str) -> MarketData | None:
    """The newest sample of ``symbol`` (one index scan on (symbol, timestamp))."""
    return MarketData.objects.filter(symbol=symbol).order_by("-timestamp", "-id").first()


def market_history_queryset(
    symbol: str, *, since: dt.datetime, cursor: Cursor | None = None, limit: int = 100
) -> QuerySet:
    """The exact query of one history page (``limit + 1`` rows, newest first)."""
    queryset = (
        MarketData.objects.filter(symbol=symbol, timestamp__gte=since)
        .order_by("-timestamp", "-id")
        .values(*HISTORY_FIELDS)
    )
    return _keyset(queryset, "timestamp", cursor)[: limit + 1]


def market_history(symbol: str, *, since: dt.datetime, cursor: Cursor | None = None, limit: int = 100) -> Page:
    queryset = market_history_queryset(symbol, since=since, cursor=cursor, limit=limit)
    # Slicing again is on the evaluated list; the query already holds LIMIT limit + 1.
    rows = list(queryset)
    if len(rows) <= limit:
        return Page(rows=rows, next_cursor=None)
    rows = rows[:limit]
    return Page(rows=rows, next_cursor=Cursor(moment=rows[-1]["timestamp"], row_id=rows[-1]["id"]))


def market_stats_queryset(symbol: str, *, since: dt.datetime, until: dt.datetime) -> QuerySet:
    """One row of window aggregates; first/last price come from ordered ``LIMIT 1`` subqueries.

    The subqueries are uncorrelated, so PostgreSQL runs each once (an InitPlan
    walking the timestamp index from either end); grouping by ``symbol`` (a
    single value after the filter) lets them sit next to the aggregates in one
    statement.
    """
    window = MarketData.objects.filter(symbol=symbol, timestamp__gte=since, timestamp__lte=until)
    prices = window.order_by().values("trade_price")
    return (
        window.order_by()
        .values("symbol")
        .annotate(
            high=Max("trade_price"),
            low=Min("trade_price"),
            average=Avg("trade_price"),
            samples=Count("id"),
            first=Subquery(prices.order_by("timestamp", "id")[:1]),
            last=Subquery(prices.order_by("-timestamp", "-id")[:1]),
            first_at=Min("timestamp"),
            last_at=Max("timestamp"),
        )
    )


def market_stats(symbol: str, *, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """High, low, first, last, average and change % of the trade price over a window."""
    row = next(iter(market_stats_queryset(symbol, since=since, until=until)), None)
    result: dict[str, Any] = {"symbol": symbol, "since": since, "until": until}
    if row is None:
        return {
            **result,
            "samples": 0,
            "high": None,
            "low": None,
            "first": None,
            "last": None,
            "average": None,
            "change_pct": None,
            "first_at": None,
            "last_at": None,
        }
    first, last = row["first"], row["last"]
    change_pct = None
    if first:
        change_pct = ((last - first) / first * 100).quantize(PERCENT_QUANTUM)
    return {
        **result,
        "samples": row["samples"],
        "high": row["high"],
        "low": row["low"],
        "first": first,
        "last": last,
        "average": Decimal(row["average"]).quantize(PRICE_QUANTUM),
        "change_pct": change_pct,
        "first_at": row["first_at"],
        "last_at": row["last_at"],
    }


# --- signals ------------------------------------------------------------------------------------


def _created_between(queryset: QuerySet, since: dt.datetime | None, until: dt.datetime | None) -> QuerySet:
    """Rows created in ``[since, until)``; an absent bound leaves that side open."""
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset


def signal_list_queryset(
    *,
    signal_type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    cursor: Cursor | None = None,
) -> QuerySet:
    queryset = TradingSignal.objects.order_by("-created_at", "-id")
    if signal_type:
        queryset = queryset.filter(signal_type=signal_type)
    return _keyset(_created_between(queryset, since, until), "created_at", cursor).values(*SIGNAL_LIST_FIELDS)


def signal_page(*, limit: int = 50, **filters: Any) -> Page:
    return _page(signal_list_queryset(**filters), limit, lambda row: row["created_at"])


def signal_detail(signal_id: int) -> TradingSignal | None:
    return TradingSignal.objects.filter(pk=signal_id).first()


# --- orders --------------------------------------------------------------------------------------


def order_list_queryset(
    *,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    cursor: Cursor | None = None,
) -> QuerySet:
    # The signal summary comes from the same query (a LEFT JOIN), never one query per order.
    queryset = Order.objects.select_related("signal").order_by("-created_at", "-id")
    if status:
        queryset = queryset.filter(status=status)
    return _keyset(_created_between(queryset, since, until), "created_at", cursor)


def order_page(*, limit: int = 50, **filters: Any) -> Page:
    return _page(order_list_queryset(**filters), limit, lambda order: order.created_at)


def order_detail(order_id: int) -> Order | None:
    return Order.objects.select_related("signal").filter(pk=order_id).first()


# --- position and dashboard -----------------------------------------------------------------------


def position_summary(symbol: str) -> dict[str, Any]:
    """Position, latest price and unrealized P&L (Decimal, KRW)."""
    position = Position.objects.filter(symbol=symbol).first()
    latest = latest_market_data(symbol)
    quantity = position.quantity if position else ZERO
    average_buy_price = position.average_buy_price if position else ZERO
    cost = (quantity * average_buy_price).quantize(PRICE_QUANTUM)
    latest_price = latest.trade_price if latest else None
    market_value = unrealized = unrealized_pct = None
    if latest_price is not None:
        market_value = (quantity * latest_price).quantize(PRICE_QUANTUM)
        unrealized = (market_value - cost).quantize(PRICE_QUANTUM)
        if cost:
            unrealized_pct = (unrealized / cost * 100).quantize(PERCENT_QUANTUM)
    return {
        "symbol": symbol,
        "quantity": quantity,
        "average_buy_price": average_buy_price,
        "cost_krw": cost,
        "realized_pnl_krw": position.realized_pnl_krw if position else ZERO,
        "latest_price": latest_price,
        "latest_price_at": latest.timestamp if latest else None,
        "market_value_krw": market_value,
        "unrealized_pnl_krw": unrealized,
        "unrealized_pnl_pct": unrealized_pct,
        "updated_at": position.updated_at if position else None,
    }


def start_of_today(now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def trading_state() -> dict[str, Any]:
    """The trading switch as operators set it (read through the config cache)."""
    values = config_service.get_many(["trading_enabled", "trading_paused", "trading_pause_reason"])
    return {
        "enabled": values["trading_enabled"],
        "paused": values["trading_paused"],
        "pause_reason": values["trading_pause_reason"],
        "active": bool(values["trading_enabled"]) and not values["trading_paused"],
    }


def dashboard_summary(symbol: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the frontend's first screen shows, in a fixed handful of queries."""
    today = start_of_today(now)
    signal_counts = dict.fromkeys(TradingSignal.SignalType.values, 0)
    for row in (
        TradingSignal.objects.filter(created_at__gte=today).order_by().values("signal_type").annotate(count=Count("id"))
    ):
        signal_counts[row["signal_type"]] = row["count"]
    order_counts = dict.fromkeys(Order.Status.values, 0)
    for row in Order.objects.filter(created_at__gte=today).order_by().values("status").annotate(count=Count("id")):
        order_counts[row["status"]] = row["count"]
    return {
        "position": position_summary(symbol),
        "today": {
            "date": today.date(),
            "signals": {**signal_counts, "total": sum(signal_counts.values())},
            "orders": {**order_counts, "total": sum(order_counts.values())},
        },
        "trading": trading_state(),
    }


# --- AI usage -----------------------------------------------------------------------------------


def ai_cost_rates() -> tuple[Decimal, Decimal]:
    values = config_service.get_many(["ai_input_cost_krw_per_1k_tokens", "ai_output_cost_krw_per_1k_tokens"])
    return values["ai_input_cost_krw_per_1k_tokens"], values["ai_output_cost_krw_per_1k_tokens"]


def ai_usage_queryset(*, since: dt.datetime) -> QuerySet:
    return (
        TradingSignal.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .order_by()
        .values("day")
        .annotate(
            signals=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
        .order_by("day")
    )


def ai_usage_by_day(days: int, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Tokens in/out and estimated KRW cost per UTC day, oldest first, days without signals as zeros."""
    first_day = start_of_today(now) - dt.timedelta(days=days - 1)
    rows = {row["day"]: row for row in ai_usage_queryset(since=first_day)}
    input_rate, output_rate = ai_cost_rates()
    result = []
    totals = {"signals": 0, "input_tokens": 0, "output_tokens": 0, "cost_krw": ZERO}
    for offset in range(days):
        day = (first_day + dt.timedelta(days=offset)).date()
        row = rows.get(day, {})
        input_tokens = row.get("input_tokens") or 0
        output_tokens = row.get("output_tokens") or 0
        cost = (Decimal(input_tokens) * input_rate / 1000 + Decimal(output_tokens) * output_rate / 1000).quantize(
            COST_QUANTUM
        )
        entry = {
            "date": day,
            "signals": row.get("signals") or 0,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_krw": cost,
        }
        result.append(entry)
        for key in totals:
            totals[key] += entry[key]
    return {
        "days": days,
        "input_cost_krw_per_1k_tokens": input_rate,
        "output_cost_krw_per_1k_tokens": output_rate,
        "totals": totals,
        "results": result,
    }


# --- configuration --------------------------------------------------------------------------------


def config_entries() -> list[dict[str, Any]]:
    """Every defined setting: its stored row, or its schema default when no row exists yet."""
    rows = {row.key: row for row in SystemConfig.objects.all()}
    return [_config_entry(key, rows.get(key)) for key in sorted(DEFINITIONS)]


def config_entry(key: str) -> dict[str, Any] | None:
    """One setting, or ``None`` for an unknown key (checked before any query)."""
    if key not in DEFINITIONS:
        return None
    return _config_entry(key, SystemConfig.objects.filter(key=key).first())


def _config_entry(key: str, row: SystemConfig | None) -> dict[str, Any]:
    definition = DEFINITIONS[key]
    value = definition.default if row is None else definition.parse(row.value)
    return {
        "key": key,
        "value": value,
        "value_type": definition.value_type,
        "description": (row.description if row and row.description else definition.description),
        "updated_at": row.updated_at if row else None,
    }
