"""Service-level guarantees of the paper books: one account under races, missing rows, fee rounding."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from paper_exchange import services
from paper_exchange.models import PaperAccount, PaperBalance
from paper_exchange.price_feed import FixedPriceFeed
from tests.concurrency import run_in_threads
from trading.clients.exchange.paper import PaperExchange


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_use_creates_exactly_one_funded_account():
    barrier = threading.Barrier(6)

    def first_use() -> None:
        barrier.wait()
        services.ensure_account(lambda: Decimal("1234567"))

    _, errors = run_in_threads(first_use, 6)
    assert errors == []
    assert PaperAccount.objects.count() == 1
    assert list(PaperBalance.objects.order_by("currency").values_list("currency", "balance")) == [
        ("BTC", Decimal("0")),
        ("KRW", Decimal("1234567")),
    ]


@pytest.mark.django_db
def test_a_missing_balance_row_is_created_when_an_order_needs_it():
    exchange = PaperExchange(price_feed=FixedPriceFeed(Decimal("100000000")), starting_krw=lambda: Decimal("50000"))
    exchange.get_accounts()
    PaperBalance.objects.filter(currency="BTC").delete()
    order = exchange.place_order(
        market="KRW-BTC", side="bid", ord_type="price", identifier="needs-btc-row", price=Decimal(10000)
    )
    assert order.executed_volume == Decimal("0.0001")
    assert PaperBalance.objects.get(currency="BTC").balance == Decimal("0.0001")


def test_fees_are_rounded_down_to_the_satoshi_of_krw():
    assert services.fee_of(Decimal("99999.50961")) == Decimal("49.99975480")
    assert services.fee_of(Decimal("0.00001999")) == Decimal("0")
    assert services.fee_of(Decimal("12345.6789")) == Decimal("6.17283945")


@pytest.mark.django_db
def test_balances_can_never_go_negative_in_the_database():
    from django.db import IntegrityError, transaction

    account = services.ensure_account(lambda: Decimal("1000"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PaperBalance.objects.filter(account=account, currency="KRW").update(balance=Decimal("-1"))
