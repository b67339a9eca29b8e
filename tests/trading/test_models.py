"""Data model: schema indexes, typed config validation, exact decimals, DB-enforced rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.factories import make_market_data
from trading.config_schema import DEFINITIONS
from trading.models import Order, Position, SystemConfig, TradingSignal
from trading.services.config_defaults import ensure_default_config

EXPECTED_INDEXES = {
    "trading_order": {
        "idx_order_status",
        "idx_order_created_desc",
        "idx_order_user_created",
        "idx_order_upbit_uuid",
        "idx_order_user_status",
        "idx_order_status_created",
    },
    "trading_tradingsignal": {
        "idx_signal_created_desc",
        "idx_signal_type_created",
        "idx_signal_user_created",
        "idx_signal_market_data_id",
    },
    "trading_marketdata": {"idx_market_data_symbol_ts", "idx_market_data_ts_desc", "idx_market_data_date"},
}


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrations_create_every_seed_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
            [list(EXPECTED_INDEXES)],
        )
        rows = cursor.fetchall()
    found: dict[str, set[str]] = {}
    definitions = {}
    for table, name, definition in rows:
        found.setdefault(table, set()).add(name)
        definitions[name] = definition
    for table, names in EXPECTED_INDEXES.items():
        assert names <= found.get(table, set()), (table, names - found.get(table, set()))
    assert "created_at DESC" in definitions["idx_order_created_desc"]
    assert "status, created_at DESC" in definitions["idx_order_status_created"]
    assert "AT TIME ZONE 'UTC'" in definitions["idx_market_data_date"]
    assert "UNIQUE" in definitions["idx_order_upbit_uuid"]


@pytest.mark.django_db
def test_default_config_rows_exist_and_are_typed():
    values = {row.key: row.typed_value for row in SystemConfig.objects.all()}
    assert set(values) == set(DEFINITIONS)
    assert values["trading_enabled"] is True
    assert values["stop_loss_pct"] == Decimal("5")
    assert values["order_poll_timeout_s"] == 30
    assert ensure_default_config() == []  # idempotent


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("stop_loss_pct", "abc", "must be a number"),
        ("stop_loss_pct", "0", "at least 0.1"),
        ("min_confidence", "1.5", "at most 1"),
        ("order_poll_timeout_s", "2.5", "whole number"),
        ("trading_enabled", "perhaps", "true or false"),
        ("no_such_key", "1", "Unknown configuration key"),
    ],
)
def test_bad_config_values_are_rejected_and_nothing_is_written(key, value, message):
    before = {row.key: row.value for row in SystemConfig.objects.all()}
    row = SystemConfig.objects.filter(key=key).first() or SystemConfig(key=key)
    row.value = value
    with pytest.raises(ValidationError, match=message):
        row.save()
    assert {row.key: row.value for row in SystemConfig.objects.all()} == before


@pytest.mark.django_db
def test_config_values_are_stored_canonically():
    row = SystemConfig.objects.get(key="stop_loss_pct")
    row.value = " 7.50 "
    row.save()
    row.refresh_from_db()
    assert row.value == "7.5"
    assert row.typed_value == Decimal("7.5")


@pytest.mark.django_db
def test_decimals_round_trip_exactly():
    price = Decimal("123456789012.12345678")
    tick = make_market_data(
        price,
        timezone.now(),
        opening_price=Decimal("0.1"),
        high_price=Decimal("0.2"),
        low_price=Decimal("0.3"),
        trade_volume=Decimal("1234.00000001"),
        change_rate=Decimal("-0.00012345"),
    )
    tick.refresh_from_db()
    assert tick.trade_price == price
    assert tick.opening_price + tick.high_price == Decimal("0.3") == tick.low_price  # no binary float error
    assert tick.change_rate == Decimal("-0.00012345")
    assert tick.timestamp.tzinfo is not None


@pytest.mark.django_db
def test_one_live_order_per_signal_is_enforced_by_the_database():
    signal = TradingSignal.objects.create(signal_type="BUY", confidence=Decimal("0.8"), provider="rule_based")
    first = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"), signal=signal)
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"), signal=signal)
    first.status = Order.Status.FAILED
    first.save()
    retry = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("10000"), signal=signal)
    assert retry.identifier != first.identifier


@pytest.mark.django_db
def test_order_identifier_exists_before_submission_and_is_unique():
    order = Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", price=Decimal("5000"))
    assert order.identifier.startswith("krwbtc-") and order.status == Order.Status.PENDING and order.uuid is None
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.create(market="KRW-BTC", side="bid", ord_type="price", identifier=order.identifier)


@pytest.mark.django_db
def test_position_is_one_per_market_and_never_negative():
    Position.objects.create(symbol="KRW-BTC", quantity=Decimal("0.5"), average_buy_price=Decimal("100000000"))
    assert Position.objects.get().cost_basis_krw == Decimal("50000000")
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.create(symbol="KRW-BTC")
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.filter(symbol="KRW-BTC").update(quantity=Decimal("-1"))
