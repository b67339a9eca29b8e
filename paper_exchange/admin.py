"""Read-only admin for the paper exchange's books: operators inspect them, nobody edits them."""

from __future__ import annotations

from django.contrib import admin

from paper_exchange.models import PaperAccount, PaperBalance, PaperIdentifier, PaperOrder
from trading.admin import ReadOnlyAdmin


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
