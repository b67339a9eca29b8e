"""Case "indexes": the schema without the seed's indexes vs with them.

Seed 000 §6 / seed 002 §2.1 add ``idx_market_data_*``, ``idx_order_*`` and
``idx_signal_*`` indexes, predicting "쿼리 20-50% 개선". One database is
migrated and filled (a month of 10 s market data — three months with
``--full`` — plus a year's worth of synthetic signals and orders at a stress
volume); a copy of it (``CREATE DATABASE … TEMPLATE``) has those indexes
dropped (the indexes that back a constraint, such as the unique exchange uuid,
stay: they are correctness, not speed). The exact SQL of the API's selectors
(``trading.selectors``) then runs against both, alternating.

Figures: median milliseconds per query on each side and the ratio, and the
``EXPLAIN (ANALYZE)`` plan of every query on both sides (stored in the JSON
and shown in the report).

    python -m benchmarks.cases.indexes [--full] [--repetitions N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from typing import Any

from benchmarks import common

AFTER_DB = "bench_idx"
BEFORE_DB = "bench_idx_noindex"
SYMBOL = "KRW-BTC"
SEED_INDEX_PREFIXES = ("idx_market_data_", "idx_order_", "idx_signal_")
CALLS_PER_ROUND = 15

FILL_SQL = [
    """
    INSERT INTO trading_marketdata
        (symbol, trade_price, opening_price, high_price, low_price, trade_volume, change_rate, timestamp, collected_at)
    SELECT 'KRW-BTC', round((95000000 + 3000000 * sin(n / 20000.0) + random() * 200000)::numeric, 0),
           95000000, 99000000, 91000000, 1000, 0.001,
           %(now)s - make_interval(secs => n * 10), %(now)s - make_interval(secs => n * 10)
    FROM generate_series(0, %(market_rows)s - 1) AS n
    """,
    """
    INSERT INTO trading_tradingsignal
        (signal_type, confidence, reasoning, provider, model_name, input_tokens, output_tokens, latency_ms, created_at)
    SELECT (ARRAY['BUY', 'SELL', 'HOLD', 'HOLD'])[1 + (n %% 4)], 0.7, 'synthetic', 'bench', 'bench', 900, 120, 800,
           %(now)s - make_interval(secs => n * %(signal_step)s)
    FROM generate_series(0, %(signal_rows)s - 1) AS n
    """,
    """
    INSERT INTO trading_order
        (identifier, uuid, market, side, ord_type, price, volume, executed_volume, executed_funds, paid_fee,
         status, exchange_state, reason, position_applied, error, created_at, updated_at)
    SELECT 'bench-' || n, 'uuid-' || n, 'KRW-BTC', 'bid', 'price', 100000, NULL, 0.001, 100000, 50,
           CASE WHEN n %% 50 = 0 THEN 'SUBMITTED' WHEN n %% 50 = 1 THEN 'PENDING'
                WHEN n %% 10 = 2 THEN 'CANCELLED' WHEN n %% 10 = 3 THEN 'FAILED' ELSE 'FILLED' END,
           'done', 'signal', true, '',
           %(now)s - make_interval(secs => n * %(order_step)s), %(now)s - make_interval(secs => n * %(order_step)s)
    FROM generate_series(0, %(order_rows)s - 1) AS n
    """,
]


def seed_indexes(conn: Any) -> list[str]:
    """The seed's plain indexes (not those backing a unique/primary constraint)."""
    rows = conn.execute(
        """
        SELECT i.relname FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid
        WHERE c.oid IS NULL AND i.relname LIKE 'idx\\_%%'
        ORDER BY i.relname
        """
    ).fetchall()
    return [name for (name,) in rows if name.startswith(SEED_INDEX_PREFIXES)]


def queries(now: dt.datetime) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The selectors' own SQL (compiled by Django), keyed by a short description."""
    from trading import selectors

    def compiled(queryset: Any) -> tuple[str, tuple[Any, ...]]:
        return queryset.query.sql_with_params()

    return {
        "history: latest 100 of the last 24 h": compiled(
            selectors.market_history_queryset(SYMBOL, since=now - dt.timedelta(days=1))
        ),
        "history: latest 100 of a 30-day window": compiled(
            selectors.market_history_queryset(SYMBOL, since=now - dt.timedelta(days=30))
        ),
        "stats: one day's aggregates": compiled(
            selectors.market_stats_queryset(SYMBOL, since=now - dt.timedelta(days=1), until=now)
        ),
        "orders: SUBMITTED, newest first (page of 50)": compiled(
            selectors.order_list_queryset(status="SUBMITTED")[:51]
        ),
        "orders: newest first (page of 50)": compiled(selectors.order_list_queryset()[:51]),
        "signals: BUY, newest first (page of 50)": compiled(selectors.signal_list_queryset(signal_type="BUY")[:51]),
    }


def time_query(conn: Any, sql: str, params: tuple[Any, ...]) -> float:
    """Median milliseconds of CALLS_PER_ROUND executions (rows fetched)."""
    samples = []
    for _ in range(CALLS_PER_ROUND):
        began = time.perf_counter()
        conn.execute(sql, params).fetchall()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def explain(conn: Any, sql: str, params: tuple[Any, ...]) -> str:
    rows = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, params).fetchall()
    return "\n".join(row[0] for row in rows)


def uses_index(plan: str) -> bool:
    return any(word in plan for word in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="three months of market data instead of one")
    parser.add_argument("--repetitions", type=int)
    args = parser.parse_args(argv)
    repetitions = args.repetitions or (5 if args.full else 3)
    days = 90 if args.full else 30
    sizes = {
        "market_rows": days * 8640,
        "signal_rows": 100_000,
        "signal_step": 300,  # one every 5 minutes: ≈ a year
        "order_rows": 100_000,
        "order_step": 300,
    }
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    results: dict[str, Any] = {}
    try:
        with common.bench_database(AFTER_DB) as url:
            with common.connect(AFTER_DB) as conn:
                for statement in FILL_SQL:
                    conn.execute(statement, {**sizes, "now": now})
                conn.execute("VACUUM ANALYZE")
                dropped = seed_indexes(conn)
            common.create_database(BEFORE_DB, template=AFTER_DB)
            with common.connect(BEFORE_DB) as conn:
                for name in dropped:
                    conn.execute(f'DROP INDEX "{name}"')
                conn.execute("VACUUM ANALYZE")
            common.setup_django(url, DB_POOL_MIN="1", DB_POOL_MAX="2")
            statements = queries(now)
            with common.connect(BEFORE_DB) as before_conn, common.connect(AFTER_DB) as after_conn:
                for label, (sql, params) in statements.items():
                    # Warm both caches once so that the first side measured is not penalised.
                    before_conn.execute(sql, params).fetchall()
                    after_conn.execute(sql, params).fetchall()
                    timing = common.alternate(
                        repetitions,
                        lambda s=sql, p=params: time_query(before_conn, s, p),
                        lambda s=sql, p=params: time_query(after_conn, s, p),
                    )
                    before_plan, after_plan = explain(before_conn, sql, params), explain(after_conn, sql, params)
                    results[label] = {
                        "milliseconds": timing,
                        "before_plan": before_plan,
                        "after_plan": after_plan,
                        "after_uses_index": uses_index(after_plan),
                        "sql": sql % tuple(repr(str(p)) for p in params) if params else sql,
                    }
                    print(
                        f"indexes {label}: {timing['before']:.2f} ms -> {timing['after']:.2f} ms "
                        f"(ratio {timing['ratio']:.3f}), index used: {results[label]['after_uses_index']}",
                        file=sys.stderr,
                    )
            from django.db import connections

            connections.close_all()
    finally:
        common.drop_database(BEFORE_DB)
    common.write_json(
        "indexes",
        {
            "profile": "full" if args.full else "quick",
            "repetitions": repetitions,
            "calls_per_round": CALLS_PER_ROUND,
            "data": sizes,
            "dropped_indexes": dropped,
            "before": "schema without the seed's indexes (copy database)",
            "after": "schema as migrated",
            "queries": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
