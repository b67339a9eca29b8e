"""Books of the paper exchange: its own "remote" ledger, separate from the trading app's rows.

The trading app's ``Order``/``Position`` are what *we* believe; these tables
are what the simulated exchange knows, exactly as Upbit's servers would. Every
amount is a ``Decimal``.
"""

from __future__ import annotations

import uuid

from django.db import models

AMOUNT = {"max_digits": 30, "decimal_places": 8}


class PaperAccount(models.Model):
    """One simulated exchange account (the system uses the one named ``default``)."""

    name = models.CharField(max_length=50, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class PaperBalance(models.Model):
    """Free and locked amount of one currency (``KRW``, ``BTC``) in an account."""

    account = models.ForeignKey(PaperAccount, on_delete=models.CASCADE, related_name="balances")
    currency = models.CharField(max_length=10)
    balance = models.DecimalField(default=0, **AMOUNT)  # free
    locked = models.DecimalField(default=0, **AMOUNT)
    avg_buy_price = models.DecimalField(default=0, **AMOUNT)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="paper_balance_one_per_currency"),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="paper_balance_not_negative"),
            models.CheckConstraint(condition=models.Q(locked__gte=0), name="paper_locked_not_negative"),
        ]
        ordering = ["account", "currency"]

    def __str__(self) -> str:
        return f"{self.currency} {self.balance} (+{self.locked} locked)"


class PaperIdentifier(models.Model):
    """Every client order identifier ever sent, even for refused orders: Upbit never accepts one twice."""

    identifier = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.identifier


class PaperOrder(models.Model):
    """An order as the simulated exchange holds it (Upbit's fields and states)."""

    class Side(models.TextChoices):
        BID = "bid", "bid (buy)"
        ASK = "ask", "ask (sell)"

    class OrdType(models.TextChoices):
        LIMIT = "limit", "limit"
        PRICE = "price", "market buy by KRW amount"
        MARKET = "market", "market sell by volume"

    class State(models.TextChoices):
        WAIT = "wait", "wait"
        DONE = "done", "done"
        CANCEL = "cancel", "cancel"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    identifier = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey(PaperAccount, on_delete=models.PROTECT, related_name="orders")
    market = models.CharField(max_length=20)
    side = models.CharField(max_length=3, choices=Side.choices)
    ord_type = models.CharField(max_length=6, choices=OrdType.choices)
    price = models.DecimalField(null=True, blank=True, **AMOUNT)
    volume = models.DecimalField(null=True, blank=True, **AMOUNT)
    state = models.CharField(max_length=6, choices=State.choices, default=State.WAIT)
    executed_volume = models.DecimalField(default=0, **AMOUNT)
    executed_funds = models.DecimalField(default=0, **AMOUNT)
    paid_fee = models.DecimalField(default=0, **AMOUNT)
    # What this order still holds locked (KRW for a bid, BTC for an ask); released when it ends.
    locked = models.DecimalField(default=0, **AMOUNT)
    # Simulated-feed step at which fills were last computed (liquidity is per step).
    last_fill_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "market", "state"], name="paper_order_open_idx")]

    def __str__(self) -> str:
        return f"{self.side} {self.ord_type} {self.identifier} ({self.state})"
