"""cleanup_old_data: only rows past retention, in bounded batches (one DELETE each)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import bulk_market_data
from trading.models import MarketData, TradingSignal
from trading.services import config
from trading.services.cleanup import cleanup_old_data

pytestmark = pytest.mark.django_db


def _rows(count: int, *, age: timedelta, now) -> list[MarketData]:
    return bulk_market_data((Decimal("100000000"), now - age - timedelta(seconds=10 * index)) for index in range(count))


def _deletes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].upper().startswith("DELETE")]


def test_deletes_only_rows_older_than_retention_in_batches():
    now = timezone.now()
    config.set_value("market_data_retention_days", 7)
    _rows(23, age=timedelta(days=8), now=now)
    kept = _rows(5, age=timedelta(days=6), now=now)
    with CaptureQueriesContext(connection) as queries:
        summary = cleanup_old_data(now=now, batch_size=10)
    assert summary.market_data_deleted == 23
    assert summary.batches == 3
    assert len(_deletes(queries)) == 3  # ceil(23 / 10): one DELETE per batch, never one per row
    assert all("trading_marketdata" in sql for sql in _deletes(queries))
    assert sorted(MarketData.objects.values_list("id", flat=True)) == sorted(row.id for row in kept)
    assert summary.cutoff == now - timedelta(days=7)


def test_each_batch_is_its_own_transaction():
    now = timezone.now()
    _rows(4, age=timedelta(days=40), now=now)
    with CaptureQueriesContext(connection) as queries:
        cleanup_old_data(now=now, batch_size=2)
    markers = []
    for query in queries.captured_queries:
        sql = query["sql"].upper()
        if sql.startswith("DELETE"):
            markers.append("DELETE")
        elif sql.startswith("SAVEPOINT") or sql.startswith("RELEASE SAVEPOINT"):
            markers.append(sql.split()[0])
    # (Inside the test's own transaction each atomic block is a savepoint.) Each DELETE is
    # wrapped in its own block, committed before the next batch is selected.
    deletes = [i for i, marker in enumerate(markers) if marker == "DELETE"]
    assert len(deletes) == 2
    for index in deletes:
        assert markers[index - 1] == "SAVEPOINT" and markers[index + 1] == "RELEASE"


def test_signals_that_pointed_at_deleted_rows_are_kept():
    now = timezone.now()
    [old] = _rows(1, age=timedelta(days=60), now=now)
    signal = TradingSignal.objects.create(
        signal_type="HOLD", confidence=Decimal("0.5"), provider="rule", market_data=old
    )
    cleanup_old_data(now=now)
    signal.refresh_from_db()
    assert signal.market_data_id is None
    assert not MarketData.objects.exists()


def test_nothing_old_means_no_delete():
    now = timezone.now()
    _rows(3, age=timedelta(days=1), now=now)
    with CaptureQueriesContext(connection) as queries:
        summary = cleanup_old_data(now=now)
    assert (summary.market_data_deleted, summary.batches) == (0, 0)
    assert _deletes(queries) == []
    assert MarketData.objects.count() == 3
