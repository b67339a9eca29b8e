"""``manage.py backfill_market_data``: fill missing history from exchange candles (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.clients.exchange.errors import ExchangeError
from trading.services.market_data import BACKFILL_MAX_DAYS, backfill_market_data


class Command(BaseCommand):
    help = (
        "Insert candle closes for the history the signal sampler needs (hourly for N days, 15-minute for 24 h, "
        "1-minute for the last hour) where no row is stored yet; a second run inserts nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=14, help=f"Days of hourly history (1-{BACKFILL_MAX_DAYS}, default 14)."
        )

    def handle(self, *args: Any, days: int = 14, **options: Any) -> None:
        if not 1 <= days <= BACKFILL_MAX_DAYS:
            raise CommandError(f"--days must be 1 to {BACKFILL_MAX_DAYS}.")
        try:
            inserted = backfill_market_data(days=days)
        except ExchangeError as error:
            raise CommandError(f"backfill failed, nothing stored: {type(error).__name__}: {error}") from error
        self.stdout.write(f"Backfilled {inserted} market data rows (candle closes).")
