"""A transparent technical rule as the signal provider when no AI key is configured.

Rule ``sma-rsi-v2`` over ``SignalRequest.samples`` (oldest first). The
sampler mixes resolutions (hourly, then 15-minute, then 1-minute points), so
the samples are first put on a regular 15-minute grid ending at the newest
sample: each grid point takes the latest sample at or before it. Windows below
count grid points (20 = 5 hours, 60 = 15 hours):

- fast = mean of the last 20 prices, slow = mean of the last 60;
  spread = |fast - slow| / slow;
- RSI(14) with simple averages (Cutler's RSI): 100 - 100 / (1 + avg gain / avg loss)
  over the last 14 changes (100 when there was no loss, 50 when no change);
- a *cross up* happened when fast > slow now and fast <= slow at one of the
  previous 3 grid points (45 minutes); a *cross down* mirrors it;
- BUY when a cross up happened and RSI < 70;
- BUY (trend regime) when no position is held, fast > slow with spread >= 0.2 %
  and RSI < 70 — an established uptrend is entered without waiting for the next
  cross (v2; v1 traded crosses only);
- SELL when a cross down happened, or when RSI > 75 and a position is held, or
  (trend regime) when a position is held and fast < slow;
- HOLD otherwise (also when there are fewer than 64 grid points, 16 hours).

Confidence (0..1, four decimals), with strength = min(1, spread / 0.5 %):

- BUY (cross or trend): 0.5 + 0.4 * strength + 0.1 * (70 - RSI) / 70
  (a trend BUY is therefore at least 0.66: strength >= 0.4)
- SELL on a cross down or in a downtrend with a position: 0.5 + 0.5 * strength
- SELL on RSI: 0.5 + 0.5 * min(1, (RSI - 75) / 25); when several hold, the largest
- HOLD: 0.5; HOLD for lack of data: 0
"""

from __future__ import annotations

import time
from bisect import bisect_right
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from trading.clients.ai.base import PricePoint, ProviderStatus, SignalProvider, SignalRequest, SignalResult

GRID = timedelta(minutes=15)
MAX_GRID_POINTS = 400

FAST_WINDOW = 20
SLOW_WINDOW = 60
RSI_PERIOD = 14
CROSS_LOOKBACK = 3
RSI_BUY_CEILING = Decimal(70)
RSI_SELL_FLOOR = Decimal(75)
FULL_STRENGTH_SPREAD = Decimal("0.005")
TREND_MIN_SPREAD = Decimal("0.002")
MINIMUM_SAMPLES = SLOW_WINDOW + CROSS_LOOKBACK + 1
ONE = Decimal(1)
HALF = Decimal("0.5")
PLACES = Decimal("0.0001")


def simple_moving_average(prices: list[Decimal], window: int, end: int) -> Decimal:
    """Mean of ``prices[end - window:end]``."""
    return sum(prices[end - window : end], Decimal(0)) / window


def relative_strength_index(prices: list[Decimal], period: int = RSI_PERIOD) -> Decimal:
    changes = [later - earlier for earlier, later in zip(prices[-period - 1 : -1], prices[-period:], strict=True)]
    gain = sum((change for change in changes if change > 0), Decimal(0)) / period
    loss = sum((-change for change in changes if change < 0), Decimal(0)) / period
    if loss == 0:
        return Decimal(50) if gain == 0 else Decimal(100)
    return Decimal(100) - Decimal(100) / (ONE + gain / loss)


def resample(samples: list[PricePoint], interval: timedelta = GRID, limit: int = MAX_GRID_POINTS) -> list[Decimal]:
    """Prices on a regular grid ending at the newest sample (oldest first), each the latest sample at or before it."""
    if not samples:
        return []
    ordered = sorted(samples, key=lambda point: point.timestamp)
    times = [point.timestamp for point in ordered]
    grid = []
    moment = times[-1]
    while moment >= times[0] and len(grid) < limit:
        grid.append(ordered[bisect_right(times, moment) - 1].price)
        moment -= interval
    return grid[::-1]


def _krw(value: Decimal) -> str:
    return f"{value:,.0f}"


class RuleBasedSignalProvider(SignalProvider):
    """SMA(20/60) crossover and trend regime with an RSI(14) filter; no network, no tokens."""

    name = "rule_based"
    model_name = "sma-rsi-v2"
    follows_prompt_confidence_formula = False  # its confidence formula is the one in this docstring

    def generate(self, request: SignalRequest) -> SignalResult:
        started = time.monotonic()
        signal, confidence, reasoning = self.decide(resample(request.samples), holding=request.position_quantity > 0)
        return SignalResult(
            signal_type=signal,
            confidence=confidence.quantize(PLACES, rounding=ROUND_HALF_UP),
            reasoning=reasoning,
            provider=self.name,
            model_name=self.model_name,
            input_tokens=0,
            output_tokens=0,
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    def status(self) -> ProviderStatus:
        return ProviderStatus(available=True, detail="rule-based provider (no external AI)")

    @staticmethod
    def decide(prices: list[Decimal], *, holding: bool) -> tuple[str, Decimal, str]:
        """The rule of the module docstring: (signal, confidence, reasoning)."""
        if len(prices) < MINIMUM_SAMPLES:
            return (
                "HOLD",
                Decimal(0),
                f"Not enough data: {len(prices)} points of 15 minutes, the rule needs {MINIMUM_SAMPLES}.",
            )
        end = len(prices)
        fast = simple_moving_average(prices, FAST_WINDOW, end)
        slow = simple_moving_average(prices, SLOW_WINDOW, end)
        earlier = [
            simple_moving_average(prices, FAST_WINDOW, end - back)
            - simple_moving_average(prices, SLOW_WINDOW, end - back)
            for back in range(1, CROSS_LOOKBACK + 1)
        ]
        crossed_up = fast > slow and any(difference <= 0 for difference in earlier)
        crossed_down = fast < slow and any(difference >= 0 for difference in earlier)
        rsi = relative_strength_index(prices)
        spread = abs(fast - slow) / slow
        strength = min(ONE, spread / FULL_STRENGTH_SPREAD)
        facts = (
            f"SMA{FAST_WINDOW} {_krw(fast)} vs SMA{SLOW_WINDOW} {_krw(slow)} KRW "
            f"(spread {spread * 100:.3f} %), RSI{RSI_PERIOD} {rsi:.1f}"
        )
        buy_confidence = HALF + Decimal("0.4") * strength + Decimal("0.1") * (RSI_BUY_CEILING - rsi) / RSI_BUY_CEILING
        if crossed_up and rsi < RSI_BUY_CEILING:
            return "BUY", buy_confidence, f"BUY: SMA{FAST_WINDOW} crossed above SMA{SLOW_WINDOW} and RSI < 70; {facts}."
        uptrend = fast > slow and spread >= TREND_MIN_SPREAD
        if not holding and uptrend and rsi < RSI_BUY_CEILING:
            return (
                "BUY",
                buy_confidence,
                f"BUY: uptrend with no position, SMA{FAST_WINDOW} above SMA{SLOW_WINDOW} by at least "
                f"{TREND_MIN_SPREAD * 100:.1f} % and RSI < 70; {facts}.",
            )
        overbought = holding and rsi > RSI_SELL_FLOOR
        downtrend = holding and fast < slow
        if crossed_down or overbought or downtrend:
            reasons, confidence = [], Decimal(0)
            if crossed_down:
                reasons.append(f"SMA{FAST_WINDOW} crossed below SMA{SLOW_WINDOW}")
            elif downtrend:
                reasons.append(f"downtrend with a position held (SMA{FAST_WINDOW} below SMA{SLOW_WINDOW})")
            if crossed_down or downtrend:
                confidence = HALF + HALF * strength
            if overbought:
                reasons.append("RSI > 75 with a position held")
                confidence = max(confidence, HALF + HALF * min(ONE, (rsi - RSI_SELL_FLOOR) / 25))
            return "SELL", confidence, f"SELL: {' and '.join(reasons)}; {facts}."
        why = "no crossover in the last 3 samples"
        if fast > slow and not holding and rsi < RSI_BUY_CEILING:
            why = f"uptrend too weak (spread below {TREND_MIN_SPREAD * 100:.1f} %), no crossover in the last 3 samples"
        elif fast > slow and not holding:
            why = "uptrend but RSI >= 70 (overbought), no crossover in the last 3 samples"
        elif fast > slow and holding:
            why = "uptrend with a position held, no crossover in the last 3 samples"
        if crossed_up:
            why = "crossed above but RSI >= 70 (overbought)"
        return "HOLD", HALF, f"HOLD: {why}; {facts}."
