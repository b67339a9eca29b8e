"""Serializers of the API: query-parameter validators (``*Query``) and response shapes.

Every query parameter is validated here before it reaches a selector, so bad
input is a 400 with field-level messages, never a database error.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from trading.models import Order, TradingSignal
from trading.selectors import Cursor

MAX_HOURS = 744  # 31 days
MAX_LIMIT = 1000
MAX_DAYS = 90


# --- cursors ------------------------------------------------------------------------------------


CURSOR_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# "<microseconds since 1970 UTC>.<row id>": every string of this shape is a cursor the API can read,
# so the documented pattern says exactly what is accepted (16 digits reach the year 2286, 18 fit a bigint).
CURSOR_PATTERN = r"[0-9]{1,16}\.[0-9]{1,18}"


def encode_cursor(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    microseconds = (cursor.moment - CURSOR_EPOCH) // dt.timedelta(microseconds=1)
    return f"{microseconds}.{cursor.row_id}"


def decode_cursor(text: str) -> Cursor:
    """Raise ``ValueError`` for anything that does not match ``CURSOR_PATTERN``."""
    if re.fullmatch(CURSOR_PATTERN, text) is None:
        raise ValueError("not a cursor")
    microseconds_text, _, id_text = text.partition(".")
    return Cursor(moment=CURSOR_EPOCH + dt.timedelta(microseconds=int(microseconds_text)), row_id=int(id_text))


@extend_schema_field({"type": "string", "pattern": f"^{CURSOR_PATTERN}$"})
class CursorField(serializers.CharField):
    """The ``next_cursor`` of a previous page."""

    default_error_messages = {"invalid_cursor": "Invalid cursor: pass the next_cursor of a previous page."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("help_text", "`next_cursor` of the previous page.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Cursor:
        text = super().to_internal_value(data)
        try:
            return decode_cursor(text)
        except ValueError:
            self.fail("invalid_cursor")


def limit_field(default: int) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=default, help_text=f"Rows per page, 1-{MAX_LIMIT}."
    )


class QueryParameters(serializers.Serializer):
    """Base of the ``*Query`` serializers: a declared parameter given blank or more than once is a 400.

    DRF alone would read ``?hours=`` as "use the default" and ``?limit=1&limit=2`` as the last value;
    the schema documents one non-empty value, so anything else is refused instead of guessed at.
    Undeclared parameters stay ignored (OpenAPI does not forbid them).
    """

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        if hasattr(data, "getlist"):
            for name in self.fields:
                values = data.getlist(name)
                if len(values) > 1:
                    errors[name] = ["Give this parameter once."]
                elif values == [""]:
                    errors[name] = ["This field may not be blank."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class DateRangeQuery(QueryParameters):
    """``since`` (inclusive) / ``until`` (exclusive); a time without offset is taken as UTC."""

    since = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive; naive times are UTC.")
    until = serializers.DateTimeField(
        required=False, help_text="ISO 8601; exclusive; naive times are UTC. Must be later than `since` (else 400)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["until must be later than since."]})
        return attrs


# --- query parameters ---------------------------------------------------------------------------


class HoursQuery(QueryParameters):
    hours = serializers.IntegerField(
        min_value=1, max_value=MAX_HOURS, default=24, help_text=f"Window in hours, 1-{MAX_HOURS}."
    )


class MarketHistoryQuery(HoursQuery):
    limit = limit_field(100)
    cursor = CursorField()


class SignalListQuery(DateRangeQuery):
    signal_type = serializers.ChoiceField(choices=TradingSignal.SignalType.choices, required=False)
    limit = limit_field(50)
    cursor = CursorField()


class OrderListQuery(DateRangeQuery):
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    limit = limit_field(50)
    cursor = CursorField()


class AIUsageQuery(QueryParameters):
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, default=30, help_text=f"1-{MAX_DAYS} days.")


# --- market -------------------------------------------------------------------------------------


class TickerSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    trade_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    opening_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    high_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    low_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    trade_volume = serializers.DecimalField(max_digits=30, decimal_places=8)
    change_rate = serializers.DecimalField(max_digits=12, decimal_places=8)
    timestamp = serializers.DateTimeField()
    collected_at = serializers.DateTimeField()


class HistoryRowSerializer(serializers.Serializer):
    """Documentation of one history row; the view renders rows without a serializer pass."""

    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    trade_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    opening_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    high_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    low_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    trade_volume = serializers.DecimalField(max_digits=30, decimal_places=8)
    change_rate = serializers.DecimalField(max_digits=12, decimal_places=8)


class HistoryPageSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    hours = serializers.IntegerField()
    next_cursor = serializers.CharField(allow_null=True)
    results = HistoryRowSerializer(many=True)


class MarketStatsSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    hours = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    samples = serializers.IntegerField()
    high = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    low = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    first = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    last = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    average = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    change_pct = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    first_at = serializers.DateTimeField(allow_null=True)
    last_at = serializers.DateTimeField(allow_null=True)


# --- signals ------------------------------------------------------------------------------------


class SignalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    signal_type = serializers.ChoiceField(choices=TradingSignal.SignalType.choices)
    confidence = serializers.DecimalField(max_digits=5, decimal_places=4)
    reasoning = serializers.CharField()
    provider = serializers.CharField()
    model_name = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    latency_ms = serializers.IntegerField()
    market_data_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class SignalPageSerializer(serializers.Serializer):
    next_cursor = serializers.CharField(allow_null=True)
    results = SignalSerializer(many=True)


class SignalSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    signal_type = serializers.CharField()
    confidence = serializers.DecimalField(max_digits=5, decimal_places=4)
    provider = serializers.CharField()
    created_at = serializers.DateTimeField()


# --- orders -------------------------------------------------------------------------------------


class OrderSerializer(serializers.ModelSerializer):
    signal = SignalSummarySerializer(allow_null=True, read_only=True)
    average_price = serializers.DecimalField(max_digits=28, decimal_places=8, allow_null=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "identifier",
            "uuid",
            "market",
            "side",
            "ord_type",
            "price",
            "volume",
            "executed_volume",
            "executed_funds",
            "paid_fee",
            "average_price",
            "status",
            "exchange_state",
            "reason",
            "error",
            "signal",
            "submitted_at",
            "completed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


EIGHT_PLACES = Decimal("0.00000001")
ORDER_DECIMAL_FIELDS = ("price", "volume", "executed_volume", "executed_funds", "paid_fee")
ORDER_TIME_FIELDS = ("submitted_at", "completed_at", "created_at", "updated_at")


def decimal_text(value: Decimal | None, quantum: Decimal = EIGHT_PLACES) -> str | None:
    """A Decimal as fixed-point text with ``quantum``'s places (what DRF's DecimalField renders)."""
    return None if value is None else format(value.quantize(quantum), "f")


def time_text(value: dt.datetime | None) -> str | None:
    """An aware datetime as ISO 8601 UTC with ``Z`` (what DRF's DateTimeField renders under UTC)."""
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def order_representation(order: Order) -> dict[str, Any]:
    """The ``OrderSerializer`` shape, built directly: a 50-order page costs a few ms instead of ~10.

    A test keeps it identical to ``OrderSerializer(order).data``.
    """
    signal = order.signal
    average = order.average_price
    return {
        "id": order.id,
        "identifier": order.identifier,
        "uuid": order.uuid,
        "market": order.market,
        "side": order.side,
        "ord_type": order.ord_type,
        **{name: decimal_text(getattr(order, name)) for name in ORDER_DECIMAL_FIELDS},
        "average_price": decimal_text(average),
        "status": order.status,
        "exchange_state": order.exchange_state,
        "reason": order.reason,
        "error": order.error,
        "signal": None
        if signal is None
        else {
            "id": signal.id,
            "signal_type": signal.signal_type,
            "confidence": decimal_text(signal.confidence, Decimal("0.0001")),
            "provider": signal.provider,
            "created_at": time_text(signal.created_at),
        },
        **{name: time_text(getattr(order, name)) for name in ORDER_TIME_FIELDS},
    }


class OrderPageSerializer(serializers.Serializer):
    next_cursor = serializers.CharField(allow_null=True)
    results = OrderSerializer(many=True)


# --- position / dashboard ---------------------------------------------------------------------------


class PositionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=8)
    average_buy_price = serializers.DecimalField(max_digits=20, decimal_places=8)
    cost_krw = serializers.DecimalField(max_digits=40, decimal_places=8)
    realized_pnl_krw = serializers.DecimalField(max_digits=20, decimal_places=8)
    latest_price = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
    latest_price_at = serializers.DateTimeField(allow_null=True)
    market_value_krw = serializers.DecimalField(max_digits=40, decimal_places=8, allow_null=True)
    unrealized_pnl_krw = serializers.DecimalField(max_digits=40, decimal_places=8, allow_null=True)
    unrealized_pnl_pct = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class TradingStateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    paused = serializers.BooleanField()
    pause_reason = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField(help_text="enabled and not paused: orders may be placed.")


class SignalCountsSerializer(serializers.Serializer):
    BUY = serializers.IntegerField()
    SELL = serializers.IntegerField()
    HOLD = serializers.IntegerField()
    total = serializers.IntegerField()


class OrderCountsSerializer(serializers.Serializer):
    PENDING = serializers.IntegerField()
    SUBMITTED = serializers.IntegerField()
    FILLED = serializers.IntegerField()
    CANCELLED = serializers.IntegerField()
    FAILED = serializers.IntegerField()
    total = serializers.IntegerField()


class TodaySerializer(serializers.Serializer):
    date = serializers.DateField()
    signals = SignalCountsSerializer()
    orders = OrderCountsSerializer()


class DashboardSerializer(serializers.Serializer):
    position = PositionSerializer()
    today = TodaySerializer()
    trading = TradingStateSerializer()


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would quietly turn ``0`` or ``true`` into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class DisableTradingSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=300, default="")


# --- AI usage -----------------------------------------------------------------------------------


class AIUsageDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    signals = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_krw = serializers.DecimalField(max_digits=20, decimal_places=4)


class AIUsageTotalsSerializer(serializers.Serializer):
    signals = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_krw = serializers.DecimalField(max_digits=20, decimal_places=4)


class AIUsageSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    input_cost_krw_per_1k_tokens = serializers.DecimalField(max_digits=20, decimal_places=8)
    output_cost_krw_per_1k_tokens = serializers.DecimalField(max_digits=20, decimal_places=8)
    totals = AIUsageTotalsSerializer()
    results = AIUsageDaySerializer(many=True)


# --- configuration ------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [{"type": "boolean"}, {"type": "integer"}, {"type": "string"}],
        "description": "Typed value: bool, int, or string (decimals are strings so no float ever carries money).",
    }
)
class TypedValueField(serializers.Field):
    def to_representation(self, value: Any) -> Any:
        if isinstance(value, (bool, int, str)):
            return value
        return str(value)  # Decimal

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, (bool, int, str)):  # what the schema's oneOf says; no floats, no containers
            raise serializers.ValidationError("Give a boolean, a whole number, or a string.")
        return data


class ConfigEntrySerializer(serializers.Serializer):
    key = serializers.CharField(read_only=True)
    value = TypedValueField()
    value_type = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class ConfigValueSerializer(serializers.Serializer):
    """The PUT and PATCH body: ``value`` is the only writable field, so a PATCH must carry it too."""

    value = TypedValueField()

    # drf-spectacular documents every PATCH body as partial (all fields optional) by setting
    # ``partial``; pinned to False here so the PATCH schema says ``value`` is required, as it is.
    @property
    def partial(self) -> bool:
        return False

    @partial.setter
    def partial(self, value: bool) -> None:
        pass


# --- system -----------------------------------------------------------------------------------------


class VersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    django = serializers.CharField()
    exchange = serializers.CharField()
    signal_provider = serializers.CharField()
    market = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
