"""Read-only admin for the paper exchange's books: operators inspect them, nobody edits them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from paper_exchange.models import PaperAccount, PaperBalance, PaperIdentifier, PaperOrder


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaperAccount)
class PaperAccountAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at"]


@admin.register(PaperBalance)
class PaperBalanceAdmin(ReadOnlyAdmin):
    list_display = ["account", "currency", "balance", "locked", "avg_buy_price", "updated_at"]
    list_filter = ["currency"]


@admin.register(PaperOrder)
class PaperOrderAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "identifier",
        "side",
        "ord_type",
        "price",
        "volume",
        "state",
        "executed_volume",
        "executed_funds",
        "paid_fee",
    ]
    list_filter = ["state", "side", "ord_type"]
    search_fields = ["identifier", "uuid"]
    date_hierarchy = "created_at"


@admin.register(PaperIdentifier)
class PaperIdentifierAdmin(ReadOnlyAdmin):
    list_display = ["identifier", "created_at"]
    search_fields = ["identifier"]
