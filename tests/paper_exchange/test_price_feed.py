"""The simulated feed: deterministic across instances, realistic volatility, sane bounds."""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from paper_exchange.price_feed import EPOCH_STEPS, STEP_SECONDS, TICK, FixedPriceFeed, SimulatedPriceFeed

MOMENT = datetime(2026, 11, 23, 15, 0, 7, tzinfo=UTC)


def test_two_instances_see_the_same_price_at_the_same_moment():
    first, second = SimulatedPriceFeed(), SimulatedPriceFeed()
    for offset in range(0, 3600 * 24 * 40, 3607):
        moment = MOMENT + timedelta(seconds=offset)
        assert first.price_at(moment) == second.price_at(moment)


def test_price_is_constant_within_a_step_and_on_the_tick():
    feed = SimulatedPriceFeed()
    start = datetime.fromtimestamp(feed.step_of(MOMENT) * STEP_SECONDS, tz=UTC)
    prices = {feed.price_at(start + timedelta(seconds=second / 2)) for second in range(2 * STEP_SECONDS)}
    assert len(prices) == 1
    price = prices.pop()
    assert isinstance(price, Decimal)
    assert price % TICK == 0


def test_another_seed_gives_another_path():
    assert [SimulatedPriceFeed(seed=1).price_at_step(n) for n in range(100, 110)] != [
        SimulatedPriceFeed(seed=2).price_at_step(n) for n in range(100, 110)
    ]


def test_a_simulated_day_has_realistic_volatility_and_stays_in_sane_bounds():
    feed = SimulatedPriceFeed()
    first = feed.step_of(MOMENT)
    prices = [float(feed.price_at_step(first + n)) for n in range(86400 // STEP_SECONDS)]
    assert 70_000_000 < min(prices) <= max(prices) < 140_000_000
    returns = [math.log(b / a) for a, b in itertools.pairwise(prices)]
    daily_volatility = statistics.pstdev(returns) * math.sqrt(len(returns))
    assert 0.015 < daily_volatility < 0.035
    assert max(abs(r) for r in returns) < 0.01  # no 1 % jump in 10 s


def test_the_walk_stays_bounded_over_years_and_is_not_pinned_at_epoch_boundaries():
    feed = SimulatedPriceFeed()
    daily = [float(feed.price_at_step(n * 8640)) for n in range(0, 3650)]
    assert min(daily) > 60_000_000 and max(daily) < 160_000_000
    boundaries = {feed.price_at_step(k * EPOCH_STEPS) for k in range(1, 6)}
    assert boundaries != {Decimal("100000000")}


def test_fixed_feed_can_be_moved_by_the_test():
    feed = FixedPriceFeed(Decimal("90000000"))
    assert feed.price_at(MOMENT) == Decimal("90000000")
    feed.price = Decimal("91000000")
    assert feed.price_at_step(feed.step_of(MOMENT)) == Decimal("91000000")
