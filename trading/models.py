"""Domain model of the KRW-BTC trader.

Every amount and price is a ``Decimal`` (``DecimalField``); every time is an
aware UTC datetime. Index names follow the seeds' list (seed 000 §6, seed 002
§2.1) so that they can be found in the schema.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import TruncDate
from django.utils import timezone

from trading.config_schema import VALUE_TYPES, get_definition

PRICE = {"max_digits": 20, "decimal_places": 8}
ZERO = Decimal("0")


def new_order_identifier() -> str:
    """A client order id, unique forever (Upbit never accepts one twice)."""
    return f"krwbtc-{uuid.uuid4().hex}"


class SystemConfig(models.Model):
    """One typed operator setting; values are validated against ``config_schema``."""

    key = models.CharField(max_length=100, unique=True)
    value = models.TextField()
    value_type = models.CharField(max_length=10, choices=[(t, t) for t in VALUE_TYPES], editable=False)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name = "system config"
        verbose_name_plural = "system config"

    def __str__(self) -> str:
        return f"{self.key}={self.value}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Validation on every save, not only in forms: a bad value must never be stored.
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        try:
            definition = get_definition(self.key)
        except ValidationError as error:
            raise ValidationError({"key": error.messages}) from None
        try:
            self.value = definition.serialize(self.value)
        except ValidationError as error:
            raise ValidationError({"value": error.messages}) from None
        self.value_type = definition.value_type
        if not self.description:
            self.description = definition.description

    @property
    def typed_value(self) -> Any:
        return get_definition(self.key).parse(self.value)


class MarketData(models.Model):
    """One ticker sample of the market, taken every 10 s."""

    symbol = models.CharField(max_length=20)
    trade_price = models.DecimalField(**PRICE)
    opening_price = models.DecimalField(**PRICE)
    high_price = models.DecimalField(**PRICE)
    low_price = models.DecimalField(**PRICE)
    trade_volume = models.DecimalField(max_digits=30, decimal_places=8, help_text="Accumulated 24 h volume.")
    change_rate = models.DecimalField(
        max_digits=12, decimal_places=8, help_text="Signed change rate vs previous close."
    )
    timestamp = models.DateTimeField(help_text="Exchange time of the sample.")
    collected_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp"]
        verbose_name_plural = "market data"
        indexes = [
            models.Index(fields=["symbol", "timestamp"], name="idx_market_data_symbol_ts"),
            models.Index(fields=["-timestamp"], name="idx_market_data_ts_desc"),
            # TIME_ZONE is UTC, so this is the UTC calendar date ((timestamp AT TIME ZONE 'UTC')::date).
            models.Index(TruncDate("timestamp"), name="idx_market_data_date"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.trade_price} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class TradingSignal(models.Model):
    class SignalType(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"
        HOLD = "HOLD", "Hold"

    signal_type = models.CharField(max_length=4, choices=SignalType.choices)
    confidence = models.DecimalField(max_digits=5, decimal_places=4)
    reasoning = models.TextField(blank=True)
    market_data = models.ForeignKey(
        MarketData, null=True, blank=True, on_delete=models.SET_NULL, related_name="signals", db_index=False
    )
    provider = models.CharField(max_length=40)
    model_name = models.CharField(max_length=80, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="idx_signal_created_desc"),
            models.Index(fields=["signal_type", "created_at"], name="idx_signal_type_created"),
            models.Index(fields=["user", "created_at"], name="idx_signal_user_created"),
            models.Index(fields=["market_data"], name="idx_signal_market_data_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0) & models.Q(confidence__lte=1), name="signal_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.signal_type} ({self.confidence}) {self.created_at:%Y-%m-%d %H:%M}"


class Order(models.Model):
    """An order, recorded *before* the exchange hears of it.

    ``identifier`` is generated first and committed with status PENDING; only
    then is the order sent. After any crash the order is found again on the
    exchange by that identifier.
    """

    class Side(models.TextChoices):
        BID = "bid", "Buy"
        ASK = "ask", "Sell"

    class OrderType(models.TextChoices):
        LIMIT = "limit", "Limit"
        PRICE = "price", "Market buy (by KRW amount)"
        MARKET = "market", "Market sell (by volume)"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending (not yet acknowledged by the exchange)"
        SUBMITTED = "SUBMITTED", "Submitted (open on the exchange)"
        FILLED = "FILLED", "Filled"
        CANCELLED = "CANCELLED", "Cancelled"
        FAILED = "FAILED", "Failed (never placed)"

    class Reason(models.TextChoices):
        SIGNAL = "signal", "AI signal"
        STOP_LOSS = "stop_loss", "Stop-loss"
        TAKE_PROFIT = "take_profit", "Take-profit"
        MANUAL = "manual", "Manual"

    FINAL_STATUSES = (Status.FILLED, Status.CANCELLED, Status.FAILED)
    OPEN_STATUSES = (Status.PENDING, Status.SUBMITTED)

    identifier = models.CharField(max_length=64, unique=True, default=new_order_identifier, editable=False)
    uuid = models.CharField(max_length=64, null=True, blank=True, help_text="Exchange order uuid.")
    market = models.CharField(max_length=20)
    side = models.CharField(max_length=3, choices=Side.choices)
    ord_type = models.CharField(max_length=6, choices=OrderType.choices)
    price = models.DecimalField(
        **PRICE, null=True, blank=True, help_text="Limit price, or KRW amount for a market buy."
    )
    volume = models.DecimalField(**PRICE, null=True, blank=True)
    executed_volume = models.DecimalField(**PRICE, default=ZERO)
    executed_funds = models.DecimalField(**PRICE, default=ZERO, help_text="KRW value of the fills.")
    paid_fee = models.DecimalField(**PRICE, default=ZERO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    exchange_state = models.CharField(
        max_length=10, blank=True, help_text="Raw exchange state: wait/watch/done/cancel."
    )
    reason = models.CharField(max_length=12, choices=Reason.choices, default=Reason.SIGNAL)
    signal = models.ForeignKey(
        TradingSignal, null=True, blank=True, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    position_applied = models.BooleanField(
        default=False, help_text="Whether the fills of this (final) order have been applied to the position."
    )
    error = models.TextField(blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status"], name="idx_order_status"),
            models.Index(fields=["-created_at"], name="idx_order_created_desc"),
            models.Index(fields=["user", "created_at"], name="idx_order_user_created"),
            models.Index(fields=["user", "status"], name="idx_order_user_status"),
            models.Index(fields=["status", "-created_at"], name="idx_order_status_created"),
            models.Index(fields=["signal"], name="idx_order_signal"),
        ]
        constraints = [
            # One live order per signal, enforced by the database: two executions
            # of the same signal (or two clusters) cannot both insert.
            models.UniqueConstraint(
                fields=["signal"],
                condition=models.Q(signal__isnull=False) & ~models.Q(status="FAILED"),
                name="uniq_order_per_signal",
            ),
            # NULL uuids (not yet acknowledged) are distinct, so pending orders never collide.
            models.UniqueConstraint(fields=["uuid"], name="idx_order_upbit_uuid"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.market} {self.status} ({self.identifier})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def average_price(self) -> Decimal | None:
        if not self.executed_volume:
            return None
        return self.executed_funds / self.executed_volume


class Position(models.Model):
    """The holding in one market; exactly one row per market."""

    symbol = models.CharField(max_length=20, unique=True)
    quantity = models.DecimalField(**PRICE, default=ZERO)
    average_buy_price = models.DecimalField(**PRICE, default=ZERO)
    realized_pnl_krw = models.DecimalField(**PRICE, default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="position_quantity_non_negative")
        ]

    def __str__(self) -> str:
        return f"{self.symbol}: {self.quantity} @ {self.average_buy_price}"

    @property
    def cost_basis_krw(self) -> Decimal:
        return self.quantity * self.average_buy_price


class JobLock(models.Model):
    """A lease on a named job lock ("job:<name>" run locks, "driver:<name>" cadence drivers).

    Acquired and renewed with conditional UPDATEs, so no transaction or DB
    connection is held while the job runs; ``expires_at`` frees the lock of a
    crashed holder. ``successor`` is the token of the next cadence driver
    waiting to take over; ``last_slot`` is the last slot a driver ran, so the
    successor continues at the next one without a gap or a duplicate.
    """

    name = models.CharField(max_length=100, primary_key=True)
    owner = models.CharField(max_length=64, blank=True, help_text="Token of the holder; empty when free.")
    expires_at = models.DateTimeField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    successor = models.CharField(max_length=64, blank=True, help_text="Token of the driver waiting to take over.")
    successor_since = models.DateTimeField(null=True, blank=True)
    last_slot = models.BigIntegerField(null=True, blank=True, help_text="Index of the last cadence slot run.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({'held' if self.is_held() else 'free'})"

    def is_held(self, now: Any = None) -> bool:
        now = now or timezone.now()
        return bool(self.owner) and self.expires_at is not None and self.expires_at > now
