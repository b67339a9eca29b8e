"""Admin: operators edit SystemConfig; exchange-sourced rows are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from trading.clients.exchange.errors import ExchangeError
from trading.config_schema import DEFINITIONS, get_definition
from trading.models import JobLock, MarketData, Order, Position, SystemConfig, TradingSignal


class SystemConfigForm(forms.ModelForm):
    key = forms.ChoiceField(choices=sorted((key, key) for key in DEFINITIONS))

    class Meta:
        model = SystemConfig
        fields = ["key", "value", "description"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        key, value = cleaned.get("key"), cleaned.get("value")
        if key and value is not None:
            try:
                cleaned["value"] = get_definition(key).serialize(value)
            except ValidationError as error:
                self.add_error("value", error)
        return cleaned


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    form = SystemConfigForm
    list_display = ["key", "value", "value_type", "description", "updated_at"]
    search_fields = ["key", "description"]
    readonly_fields = ["value_type", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: SystemConfig | None = None) -> list[str]:
        # The key of an existing row is its identity; only its value changes.
        return [*self.readonly_fields, "key"] if obj else self.readonly_fields

    def get_form(self, request: HttpRequest, obj: SystemConfig | None = None, change: bool = False, **kwargs: Any):
        if obj is not None:
            kwargs["form"] = type("SystemConfigChangeForm", (SystemConfigForm,), {"key": None})
            kwargs["fields"] = ["value", "description"]
        return super().get_form(request, obj, change, **kwargs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that come from the exchange or the pipeline: viewable, never hand-edited."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MarketData)
class MarketDataAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "symbol", "trade_price", "high_price", "low_price", "change_rate", "trade_volume"]
    list_filter = ["symbol"]
    date_hierarchy = "timestamp"
    show_full_result_count = False


@admin.register(TradingSignal)
class TradingSignalAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "signal_type",
        "confidence",
        "provider",
        "model_name",
        "input_tokens",
        "output_tokens",
        "latency_ms",
    ]
    list_filter = ["signal_type", "provider"]
    date_hierarchy = "created_at"
    list_select_related = ["market_data"]
    raw_id_fields = ["market_data", "user"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "identifier",
        "side",
        "ord_type",
        "status",
        "exchange_state",
        "executed_volume",
        "executed_funds",
        "paid_fee",
        "reason",
    ]
    list_filter = ["status", "side", "reason"]
    search_fields = ["identifier", "uuid"]
    date_hierarchy = "created_at"
    raw_id_fields = ["signal", "user"]


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ["symbol", "quantity", "average_buy_price", "realized_pnl_krw", "updated_at"]
    actions = ["close_position_now"]

    @admin.action(description="Close position now (market sell, reason manual)")
    def close_position_now(self, request: HttpRequest, queryset: Any) -> None:
        """Staff only; the service places the order, the result is shown as a message."""
        from django.conf import settings

        from trading.services.order_execution import ManualOrderRejected, close_position_manually

        if not (request.user.is_active and request.user.is_staff):
            self.message_user(request, "Only staff may close a position.", messages.ERROR)
            return
        if not queryset.filter(symbol=settings.TRADING_MARKET).exists():
            self.message_user(request, f"Only the {settings.TRADING_MARKET} position is traded here.", messages.ERROR)
            return
        try:
            order = close_position_manually(user=request.user)
        except ManualOrderRejected as error:
            self.message_user(request, f"Close refused, nothing placed: {error}", messages.ERROR)
            return
        except ExchangeError as error:
            self.message_user(request, f"Close failed at the exchange: {type(error).__name__}", messages.ERROR)
            return
        level = messages.ERROR if order.status == Order.Status.FAILED else messages.SUCCESS
        detail = f": {order.error}" if order.error else ""
        self.message_user(
            request,
            f"Close order {order.identifier}: {order.status}, sold {order.executed_volume} "
            f"for {order.executed_funds} KRW{detail}",
            level,
        )


@admin.register(JobLock)
class JobLockAdmin(ReadOnlyAdmin):
    """Job run locks and cadence-driver leases; deleting a row frees a stuck lock at once."""

    list_display = ["name", "owner", "expires_at", "successor", "last_slot", "updated_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)
