"""Generate N days of synthetic 10 s market data, fast.

On PostgreSQL one ``INSERT … SELECT … FROM generate_series`` writes a month
(≈ 268,000 rows) in a few seconds; on other databases rows are built in Python
and written with ``bulk_create`` in batches. Prices follow a smooth wave plus
noise around ``--base-price`` (for demos, tests and benchmarks, never for
trading decisions).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from trading.models import MarketData

BATCH_SIZE = 5000
MAX_DAYS = 366


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Generate N days of synthetic market data at a fixed interval (default 31 days of 10 s samples)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=positive_int, default=31, help=f"1-{MAX_DAYS} days (default 31, about 268,000 rows at 10 s)."
        )
        parser.add_argument("--interval", type=positive_int, default=10, help="Seconds between samples (default 10).")
        parser.add_argument("--symbol", default=None, help="Market symbol (default settings.TRADING_MARKET).")
        parser.add_argument("--base-price", type=Decimal, default=Decimal("90000000"), help="Centre price in KRW.")
        parser.add_argument("--seed", type=int, default=7, help="Random seed (repeatable data).")
        parser.add_argument("--clear", action="store_true", help="Delete the symbol's existing market data first.")
        parser.add_argument(
            "--python", action="store_true", help="Force the bulk_create path even on PostgreSQL (slower)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days > MAX_DAYS:
            raise CommandError(f"--days must be at most {MAX_DAYS}.")
        base_price = options["base_price"]
        if not base_price.is_finite() or base_price <= 0:
            raise CommandError("--base-price must be a positive number.")
        symbol = (options["symbol"] or settings.TRADING_MARKET).upper()
        interval = options["interval"]
        end = timezone.now().replace(microsecond=0)
        count = days * 86400 // interval
        start = end - dt.timedelta(seconds=interval * (count - 1))
        began = time.monotonic()
        with transaction.atomic():
            if options["clear"]:
                MarketData.objects.filter(symbol=symbol).delete()
            if connection.vendor == "postgresql" and not options["python"]:
                inserted = insert_with_generate_series(symbol, start, interval, count, base_price, options["seed"])
            else:
                inserted = insert_with_bulk_create(symbol, start, interval, count, base_price, options["seed"])
        self.stdout.write(
            f"Inserted {inserted} {symbol} rows from {start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC "
            f"in {time.monotonic() - began:.1f} s."
        )


def insert_with_generate_series(
    symbol: str, start: dt.datetime, interval: int, count: int, base_price: Decimal, seed: int
) -> int:
    """One INSERT … SELECT: the database generates every row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [((seed % 1000) / 1000.0)])
        cursor.execute(
            """
            INSERT INTO trading_marketdata
                (symbol, trade_price, opening_price, high_price, low_price,
                 trade_volume, change_rate, timestamp, collected_at)
            SELECT %(symbol)s,
                   price,
                   round(%(base)s::numeric * 0.995),
                   round(price * 1.01),
                   round(price * 0.99),
                   round((1000 + 200 * sin(i / 500.0))::numeric, 8),
                   round(((price - %(base)s::numeric * 0.995) / (%(base)s::numeric * 0.995))::numeric, 8),
                   ts,
                   ts
            FROM (
                SELECT i,
                       %(start)s::timestamptz + make_interval(secs => i * %(interval)s) AS ts,
                       round((%(base)s::numeric * (1 + 0.03 * sin(i / 8640.0) + 0.004 * sin(i / 97.0)
                                                   + 0.001 * (random() - 0.5)))::numeric) AS price
                FROM generate_series(0, %(last)s) AS i
            ) AS samples
            """,
            {"symbol": symbol, "base": base_price, "start": start, "interval": interval, "last": count - 1},
        )
        return cursor.rowcount


def insert_with_bulk_create(
    symbol: str, start: dt.datetime, interval: int, count: int, base_price: Decimal, seed: int
) -> int:
    """The portable path: the same wave, built in Python, written in batches."""
    generator = random.Random(seed)
    opening = (base_price * Decimal("0.995")).quantize(Decimal("1"))
    batch: list[MarketData] = []
    for i in range(count):
        factor = 1 + 0.03 * math.sin(i / 8640.0) + 0.004 * math.sin(i / 97.0) + 0.001 * (generator.random() - 0.5)
        price = (base_price * Decimal(str(round(factor, 10)))).quantize(Decimal("1"))
        moment = start + dt.timedelta(seconds=i * interval)
        batch.append(
            MarketData(
                symbol=symbol,
                trade_price=price,
                opening_price=opening,
                high_price=(price * Decimal("1.01")).quantize(Decimal("1")),
                low_price=(price * Decimal("0.99")).quantize(Decimal("1")),
                trade_volume=Decimal(str(round(1000 + 200 * math.sin(i / 500.0), 8))),
                change_rate=((price - opening) / opening).quantize(Decimal("0.00000001")),
                timestamp=moment,
                collected_at=moment,
            )
        )
        if len(batch) >= BATCH_SIZE:
            MarketData.objects.bulk_create(batch)
            batch = []
    if batch:
        MarketData.objects.bulk_create(batch)
    return count
