"""Daily cleanup: market data past retention, deleted in bounded batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.db import connection, transaction
from django.utils import timezone

from trading.models import MarketData, TradingSignal
from trading.services import config

logger = structlog.get_logger("trading.cleanup")

BATCH_SIZE = 5000


@dataclass(frozen=True)
class CleanupSummary:
    cutoff: datetime
    market_data_deleted: int
    batches: int


def cleanup_old_data(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> CleanupSummary:
    """Delete ``MarketData`` older than ``market_data_retention_days``.

    Each batch selects at most ``batch_size`` ids through the timestamp index and
    deletes them in its own short transaction (one DELETE statement), so the table
    is never locked for long and the collector keeps writing meanwhile. Signals
    that pointed at a deleted sample keep existing with ``market_data`` NULL.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=int(config.get_value("market_data_retention_days")))
    table = connection.ops.quote_name(MarketData._meta.db_table)
    deleted = batches = 0
    while True:
        ids = list(
            MarketData.objects.filter(timestamp__lt=cutoff)
            .order_by("timestamp")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            TradingSignal.objects.filter(market_data_id__in=ids).update(market_data=None)
            with connection.cursor() as cursor:
                placeholders = ", ".join(["%s"] * len(ids))
                cursor.execute(f"DELETE FROM {table} WHERE id IN ({placeholders})", ids)  # noqa: S608 - ids are ints
                deleted += cursor.rowcount
        batches += 1
    logger.info("cleanup.market_data", deleted=deleted, batches=batches, cutoff=cutoff.isoformat())
    return CleanupSummary(cutoff=cutoff, market_data_deleted=deleted, batches=batches)
