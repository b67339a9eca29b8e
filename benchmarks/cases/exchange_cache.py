"""Case "exchange_cache": every ticker/balance read hits the exchange (seed) vs the 10 s cache (ours).

Seed 002 §1.4 adds a 10 s TTL cache for balances and tickers, predicting
"API 호출 50-60% 감소". Here a simulated stretch of the job mix runs on an
injected clock (the ``exchange`` locmem cache's clock is the simulated one;
nothing sleeps except the exchange's latency), through the real
``UpbitExchange`` client against the fake Upbit (``tests/fakes/upbit.py``) with
50 ms injected latency on every call; calls are counted at the server.

The read trace (per simulated hour, from the seeds' consumers and our jobs):

- ``collection``: ticker every 10 s — asked directly in both variants (ours
  bypasses the cache on purpose: at a 10 s cadence a cached ticker is the
  previous sample), so it is the floor the cache cannot lower;
- ``exit_check``: current price every 30 s (seed's position manager);
- ``signal_and_execution``: every 30 min, the seed's signal service, order
  validator and position manager read ticker 3 times, balances 3 times and the order
  chance; after the order, balances are invalidated and read once more;
- ``sync_orders``: balances every 5 min (reconciliation);
- ``dashboard``: one operator screen polling balances + ticker every 5 s.

before = each read calls the exchange; after = each read goes through
``trading.services.exchange_cache`` (``get_ticker`` / ``get_balances`` /
``get_order_chance`` / ``invalidate_balances``). Figures: exchange calls per
hour (per component and total), wall time of the stretch, the ratios.

    python -m benchmarks.cases.exchange_cache [--full] [--repetitions N] [--minutes M]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks import common

MARKET = "KRW-BTC"
LATENCY_SECONDS = 0.05

# component -> (period in seconds, reads at each tick)
TRACE: dict[str, tuple[int, tuple[str, ...]]] = {
    "collection": (10, ("ticker_direct",)),
    "exit_check": (30, ("ticker",)),
    "signal_and_execution": (
        1800,
        ("ticker", "balances", "ticker", "balances", "order_chance", "ticker", "balances", "invalidate", "balances"),
    ),
    "sync_orders": (300, ("balances",)),
    "dashboard": (5, ("balances", "ticker")),
}


class SimulatedClock:
    """``time.time`` replacement for Django's cache backends: advanced by the trace, not by waiting."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now


def install_clock(clock: SimulatedClock) -> None:
    """Give the locmem cache (expiry) and the cache base (timeouts) the simulated clock."""
    from django.core.cache.backends import base, locmem

    shim = type("SimulatedTimeModule", (), {"time": staticmethod(clock.time)})
    locmem.time = shim
    base.time = shim


def ticks(minutes: float) -> list[tuple[int, str, tuple[str, ...]]]:
    """(second, component, reads) for every tick of the stretch, in time order."""
    events = []
    for component, (period, reads) in TRACE.items():
        for second in range(0, int(minutes * 60), period):
            events.append((second, component, reads))
    events.sort(key=lambda event: (event[0], list(TRACE).index(event[1])))
    return events


def run_stretch(variant: str, minutes: float, upbit: Any, exchange: Any, clock: SimulatedClock) -> dict[str, Any]:
    from django.core.cache import caches

    from trading.services import exchange_cache

    caches[exchange_cache.CACHE_ALIAS].clear()
    cached = variant == "after"
    readers: dict[str, Callable[[], Any]] = {
        "ticker_direct": lambda: exchange.get_ticker(MARKET),
        "ticker": (lambda: exchange_cache.get_ticker(MARKET, exchange=exchange))
        if cached
        else (lambda: exchange.get_ticker(MARKET)),
        "balances": (lambda: exchange_cache.get_balances(exchange=exchange))
        if cached
        else (lambda: exchange.get_accounts()),
        "order_chance": (lambda: exchange_cache.get_order_chance(MARKET, exchange=exchange))
        if cached
        else (lambda: exchange.get_order_chance(MARKET)),
        "invalidate": (lambda: exchange_cache.invalidate_balances(MARKET)) if cached else (lambda: None),
    }
    start_second = clock.now
    per_component: Counter[str] = Counter()
    tick_count: Counter[str] = Counter()
    reads = 0
    began = time.perf_counter()
    for second, component, trace_reads in ticks(minutes):
        clock.now = start_second + second
        before = len(upbit.requests)
        for read in trace_reads:
            readers[read]()
            reads += read != "invalidate"
        per_component[component] += len(upbit.requests) - before
        tick_count[component] += 1
    wall = time.perf_counter() - began
    clock.now = start_second + minutes * 60 + 3600  # the next stretch starts with everything expired
    # Per hour = calls per tick x ticks per hour (a short stretch holds only one 30-min tick).
    per_hour = {name: per_component[name] / tick_count[name] * 3600 / TRACE[name][0] for name in tick_count}
    return {
        "reads": reads,
        "exchange_calls": sum(per_component.values()),
        "exchange_calls_per_hour": sum(per_hour.values()),
        "per_component_per_hour": per_hour,
        "wall_seconds": wall,
        "wall_seconds_per_simulated_hour": wall * 60 / minutes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="a whole simulated hour per run")
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--minutes", type=float, help="simulated minutes per run (quick 10, full 60)")
    args = parser.parse_args(argv)
    repetitions = args.repetitions or (5 if args.full else 3)
    minutes = args.minutes or (60.0 if args.full else 10.0)
    common.setup_django(EXCHANGE="upbit")
    from tests.fakes.http import Fault
    from tests.fakes.upbit import TEST_ACCESS_KEY, TEST_SECRET_KEY, FakeUpbit
    from trading.clients.exchange.rate_limit import RateLimiter
    from trading.clients.exchange.upbit import UpbitExchange

    clock = SimulatedClock(time.time())
    install_clock(clock)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with FakeUpbit(rate_limits=None) as upbit:
        upbit.add_fault(Fault.delay(LATENCY_SECONDS), fraction=1.0)
        # The client-side throttle is left out: it would add its own waits to the wall time.
        exchange = UpbitExchange(
            TEST_ACCESS_KEY,
            TEST_SECRET_KEY,
            upbit.url,
            rate_limiter=RateLimiter({"default": 1000, "quotation": 1000, "order": 1000}),
        )
        try:
            for repetition in range(repetitions):
                order = ["before", "after"] if repetition % 2 == 0 else ["after", "before"]
                for variant in order:
                    result = run_stretch(variant, minutes, upbit, exchange, clock)
                    runs[variant].append(result)
                    print(
                        f"exchange_cache {variant}: {result['exchange_calls_per_hour']:.0f} calls/h, "
                        f"{result['wall_seconds']:.1f} s wall",
                        file=sys.stderr,
                    )
        finally:
            exchange.close()
    calls = common.summarize(
        [r["exchange_calls_per_hour"] for r in runs["before"]], [r["exchange_calls_per_hour"] for r in runs["after"]]
    )
    wall = common.summarize(
        [r["wall_seconds_per_simulated_hour"] for r in runs["before"]],
        [r["wall_seconds_per_simulated_hour"] for r in runs["after"]],
    )
    per_component = {
        name: {
            "before": runs["before"][0]["per_component_per_hour"].get(name, 0),
            "after": runs["after"][0]["per_component_per_hour"].get(name, 0),
        }
        for name in TRACE
    }
    for figures in per_component.values():
        figures["ratio"] = common.ratio(figures["after"], figures["before"])
    without_collection = {
        variant: sum(v[variant] for name, v in per_component.items() if name != "collection")
        for variant in ("before", "after")
    }
    common.write_json(
        "exchange_cache",
        {
            "profile": "full" if args.full else "quick",
            "repetitions": repetitions,
            "simulated_minutes_per_run": minutes,
            "latency_ms": LATENCY_SECONDS * 1000,
            "trace": {name: {"period_s": period, "reads": list(reads)} for name, (period, reads) in TRACE.items()},
            "before": "every read calls the exchange",
            "after": "trading.services.exchange_cache (10 s)",
            "calls_per_hour": calls,
            "wall_seconds_per_simulated_hour": wall,
            "per_component_per_hour": per_component,
            "calls_per_hour_excluding_collection": {
                **without_collection,
                "ratio": common.ratio(without_collection["after"], without_collection["before"]),
            },
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
