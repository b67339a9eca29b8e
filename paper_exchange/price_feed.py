"""A deterministic simulated KRW-BTC price: the same price in every process at the same moment.

Why: the web process and several django-q2 workers all ask the paper exchange
for prices. Without shared state they must agree, so the price is a pure
function of (seed, wall-clock step).

How: time is cut into 10 s steps. The log price is a random walk (Brownian
motion) built by Lévy's midpoint construction: on an epoch of 2**18 steps
(about 30 days) a Brownian bridge is fixed from 0 to 0; the value at any step
is found by descending the dyadic midpoints to it, each midpoint drawn from a
Gaussian seeded by a hash of (seed, epoch, midpoint). That is 18 hashed draws
per bridge, O(log n) per price and no replay of history. Two bridges offset by
half an epoch are averaged (each scaled by 1/sqrt(2)) so that the price is not
pinned to the base price at epoch boundaries. Locally the walk has per-step
volatility ``daily_volatility / sqrt(8640)`` (about 2.5 % a day); globally it
stays within a few tens of percent of ``base_price`` (its standard deviation is
about 0.025 * sqrt(30 / 4) ≈ 7 %). Prices are rounded to Upbit's KRW-BTC tick
(1,000 KRW).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from statistics import NormalDist

STEP_SECONDS = 10
EPOCH_LEVELS = 18
EPOCH_STEPS = 2**EPOCH_LEVELS
DEFAULT_SEED = 20240601
DEFAULT_BASE_PRICE = Decimal("100000000")
DEFAULT_DAILY_VOLATILITY = 0.025
TICK = Decimal("1000")

_STANDARD_NORMAL = NormalDist()


@lru_cache(maxsize=1 << 17)
def _standard_normal(seed: int, stream: int, epoch: int, node: int) -> float:
    """One N(0, 1) draw that depends only on its coordinates (neighbouring steps share most of them)."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{epoch}:{node}".encode(), digest_size=8).digest()
    uniform = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return _STANDARD_NORMAL.inv_cdf(uniform)


class PriceFeed:
    """Anything that prices the market at a moment (tests pin it with ``FixedPriceFeed``)."""

    def price_at(self, moment: datetime) -> Decimal:
        raise NotImplementedError

    def step_of(self, moment: datetime) -> int:
        return math.floor(moment.timestamp() / STEP_SECONDS)

    def price_at_step(self, step: int) -> Decimal:
        return self.price_at(datetime.fromtimestamp(step * STEP_SECONDS, tz=UTC))


class SimulatedPriceFeed(PriceFeed):
    """The seeded random walk described in the module docstring."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        base_price: Decimal = DEFAULT_BASE_PRICE,
        daily_volatility: float = DEFAULT_DAILY_VOLATILITY,
    ) -> None:
        self.seed = seed
        self.base_price = base_price
        self.step_sigma = daily_volatility / math.sqrt(86400 / STEP_SECONDS)

    def price_at(self, moment: datetime) -> Decimal:
        return self.price_at_step(self.step_of(moment))

    def price_at_step(self, step: int) -> Decimal:
        offset = (self._bridge(step, 0) + self._bridge(step + EPOCH_STEPS // 2, 1)) / math.sqrt(2)
        raw = self.base_price * Decimal(repr(math.exp(offset)))
        return max(TICK, (raw / TICK).quantize(Decimal("1"), rounding=ROUND_HALF_UP) * TICK)

    def _bridge(self, position: int, stream: int) -> float:
        """Value at ``position`` of a Brownian bridge (0 at both ends of its epoch)."""
        epoch, target = divmod(position, EPOCH_STEPS)
        low, high = 0, EPOCH_STEPS
        low_value = high_value = 0.0
        while high - low > 1:
            middle = (low + high) // 2
            # Midpoint of a Brownian bridge over a span L: mean of the ends, variance sigma^2 * L / 4.
            spread = self.step_sigma * math.sqrt((high - low) / 4)
            middle_value = (low_value + high_value) / 2 + spread * _standard_normal(self.seed, stream, epoch, middle)
            if target == middle:
                return middle_value
            if target < middle:
                high, high_value = middle, middle_value
            else:
                low, low_value = middle, middle_value
        return low_value if target == low else high_value


class FixedPriceFeed(PriceFeed):
    """A price the caller sets (tests, demos): ``feed.price = Decimal(...)`` moves the market."""

    def __init__(self, price: Decimal | Callable[[datetime], Decimal]) -> None:
        self.price = price

    def price_at(self, moment: datetime) -> Decimal:
        return self.price(moment) if callable(self.price) else self.price
