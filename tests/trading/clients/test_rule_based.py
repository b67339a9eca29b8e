"""The rule-based provider on constructed price series, one per outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.clients.ai.base import PricePoint, SignalRequest
from trading.clients.ai.rule_based import (
    FAST_WINDOW,
    MINIMUM_SAMPLES,
    SLOW_WINDOW,
    TREND_MIN_SPREAD,
    RuleBasedSignalProvider,
    relative_strength_index,
    resample,
    simple_moving_average,
)

START = datetime(2026, 11, 1, tzinfo=UTC)


def zigzag(start: Decimal, count: int, up: int, down: int) -> list[Decimal]:
    """``count`` prices after ``start``, alternating +up and -down (so RSI = 100 * up / (up + down))."""
    prices, price = [], start
    for index in range(count):
        price += Decimal(up if index % 2 == 0 else -down)
        prices.append(price)
    return prices


def until_cross(prices: list[Decimal], up: int, down: int, above: bool) -> list[Decimal]:
    """Continue the zigzag until the fast average first crosses the slow one (the cross is the last sample)."""
    prices = list(prices)
    index = 0
    while True:
        prices.append(prices[-1] + Decimal(up if index % 2 == 0 else -down))
        index += 1
        fast = simple_moving_average(prices, FAST_WINDOW, len(prices))
        slow = simple_moving_average(prices, SLOW_WINDOW, len(prices))
        if (fast > slow) if above else (fast < slow):
            return prices


def request(prices: list[Decimal], position: Decimal = Decimal(0)) -> SignalRequest:
    samples = [PricePoint(START + timedelta(minutes=15 * index), price) for index, price in enumerate(prices)]
    return SignalRequest(
        market="KRW-BTC", prompt="", samples=samples, current_price=prices[-1], position_quantity=position
    )


provider = RuleBasedSignalProvider()


def test_buy_on_a_cross_above_with_rsi_below_70():
    falling = zigzag(Decimal(100_000_000), 100, 200_000, 300_000)
    prices = until_cross(falling, 300_000, 200_000, above=True)
    assert relative_strength_index(prices) == Decimal(60)
    result = provider.generate(request(prices))
    assert result.signal_type == "BUY"
    assert Decimal("0.5") < result.confidence <= 1
    assert "crossed above" in result.reasoning and "RSI14 60.0" in result.reasoning
    assert (result.provider, result.model_name, result.input_tokens, result.output_tokens) == (
        "rule_based",
        "sma-rsi-v2",
        0,
        0,
    )


def test_confidence_follows_the_documented_formula():
    prices = until_cross(zigzag(Decimal(100_000_000), 100, 200_000, 300_000), 300_000, 200_000, above=True)
    fast = simple_moving_average(prices, 20, len(prices))
    slow = simple_moving_average(prices, 60, len(prices))
    strength = min(Decimal(1), abs(fast - slow) / slow / Decimal("0.005"))
    expected = Decimal("0.5") + Decimal("0.4") * strength + Decimal("0.1") * (Decimal(70) - Decimal(60)) / Decimal(70)
    assert provider.generate(request(prices)).confidence == expected.quantize(Decimal("0.0001"))


def test_no_buy_when_the_cross_is_overbought():
    prices = until_cross(zigzag(Decimal(100_000_000), 100, 100_000, 150_000), 500_000, 100_000, above=True)
    assert relative_strength_index(prices) > 70
    result = provider.generate(request(prices))
    assert result.signal_type == "HOLD" and "overbought" in result.reasoning


def test_sell_on_a_cross_below():
    rising = zigzag(Decimal(100_000_000), 100, 300_000, 200_000)
    prices = until_cross(rising, 200_000, 300_000, above=False)
    result = provider.generate(request(prices))
    assert result.signal_type == "SELL"
    assert "crossed below" in result.reasoning
    assert Decimal("0.5") <= result.confidence <= 1


def test_sell_when_overbought_only_with_a_position():
    prices = zigzag(Decimal(100_000_000), 200, 500_000, 100_000)  # RSI 83, long past any cross
    rsi = relative_strength_index(prices)
    assert rsi > 75
    holding = provider.generate(request(prices, position=Decimal("0.01")))
    assert holding.signal_type == "SELL" and "RSI > 75" in holding.reasoning
    expected = Decimal("0.5") + Decimal("0.5") * min(Decimal(1), (rsi - 75) / 25)
    assert holding.confidence == expected.quantize(Decimal("0.0001"))
    assert provider.generate(request(prices)).signal_type == "HOLD"


def test_hold_in_a_steady_uptrend_without_a_cross_when_a_position_is_held():
    prices = zigzag(Decimal(100_000_000), 200, 300_000, 200_000)
    result = provider.generate(request(prices, position=Decimal("0.01")))
    assert (result.signal_type, result.confidence) == ("HOLD", Decimal("0.5000"))
    assert "no crossover" in result.reasoning and "SMA20" in result.reasoning


def spread_of(prices: list[Decimal]) -> Decimal:
    fast = simple_moving_average(prices, FAST_WINDOW, len(prices))
    slow = simple_moving_average(prices, SLOW_WINDOW, len(prices))
    return (fast - slow) / slow


def test_trend_buy_when_flat_in_an_established_uptrend():
    prices = zigzag(Decimal(100_000_000), 200, 300_000, 200_000)  # +25,000 a step: fast 0.5 % above slow
    assert spread_of(prices) >= TREND_MIN_SPREAD
    rsi = relative_strength_index(prices)
    assert rsi == Decimal(60)
    result = provider.generate(request(prices))
    assert result.signal_type == "BUY" and "uptrend with no position" in result.reasoning
    strength = min(Decimal(1), spread_of(prices) / Decimal("0.005"))
    expected = Decimal("0.5") + Decimal("0.4") * strength + Decimal("0.1") * (Decimal(70) - rsi) / Decimal(70)
    assert result.confidence == expected.quantize(Decimal("0.0001"))
    assert result.confidence >= Decimal("0.66")


def test_no_trend_buy_when_the_spread_is_below_the_minimum():
    prices = zigzag(Decimal(100_000_000), 200, 210_000, 200_000)  # +5,000 a step: fast 0.1 % above slow
    assert 0 < spread_of(prices) < TREND_MIN_SPREAD
    result = provider.generate(request(prices))
    assert (result.signal_type, result.confidence) == ("HOLD", Decimal("0.5000"))
    assert "uptrend too weak" in result.reasoning


def test_no_trend_buy_when_overbought():
    prices = zigzag(Decimal(100_000_000), 200, 500_000, 150_000)  # RSI 76.9, strongly rising
    assert spread_of(prices) >= TREND_MIN_SPREAD and relative_strength_index(prices) >= 70
    result = provider.generate(request(prices))
    assert result.signal_type == "HOLD" and "RSI >= 70" in result.reasoning


def test_trend_sell_when_holding_in_a_downtrend_and_hold_when_flat():
    prices = zigzag(Decimal(100_000_000), 200, 200_000, 300_000)  # -25,000 a step, long past any cross
    assert spread_of(prices) < 0
    holding = provider.generate(request(prices, position=Decimal("0.01")))
    assert holding.signal_type == "SELL" and "downtrend with a position held" in holding.reasoning
    strength = min(Decimal(1), -spread_of(prices) / Decimal("0.005"))
    assert holding.confidence == (Decimal("0.5") + Decimal("0.5") * strength).quantize(Decimal("0.0001"))
    flat = provider.generate(request(prices))
    assert (flat.signal_type, flat.confidence) == ("HOLD", Decimal("0.5000"))


def test_the_rule_is_deterministic():
    prices = zigzag(Decimal(100_000_000), 200, 300_000, 200_000)
    first, second = provider.generate(request(prices)), provider.generate(request(prices))
    assert (first.signal_type, first.confidence, first.reasoning) == (
        second.signal_type,
        second.confidence,
        second.reasoning,
    )


def test_hold_with_zero_confidence_without_enough_data():
    result = provider.generate(request([Decimal(100_000_000)] * (MINIMUM_SAMPLES - 1)))
    assert (result.signal_type, result.confidence) == ("HOLD", Decimal("0.0000"))
    assert "Not enough data" in result.reasoning


def test_flat_market_is_a_hold_with_neutral_rsi():
    prices = [Decimal(100_000_000)] * 100
    assert relative_strength_index(prices) == 50
    assert provider.generate(request(prices)).signal_type == "HOLD"


def test_mixed_resolution_samples_are_put_on_a_15_minute_grid():
    hourly = [PricePoint(START + timedelta(hours=index), Decimal(100 + index)) for index in range(3)]
    minutely = [PricePoint(START + timedelta(hours=2, minutes=1 + index), Decimal(200 + index)) for index in range(20)]
    assert resample(hourly + minutely) == [
        Decimal(value) for value in (100, 100, 100, 100, 101, 101, 101, 101, 204, 219)
    ]
    assert resample(list(reversed(hourly))) == resample(hourly)
    assert resample([]) == []


def test_a_realistic_sampler_shape_gives_a_decision_with_stated_numbers():
    hourly = [PricePoint(START + timedelta(hours=index), Decimal(100_000_000 + 10_000 * index)) for index in range(336)]
    after = START + timedelta(hours=336)
    quarter = [PricePoint(after + timedelta(minutes=15 * index), Decimal(103_000_000)) for index in range(96)]
    after += timedelta(hours=24)
    minutes = [PricePoint(after + timedelta(minutes=index), Decimal(103_500_000)) for index in range(12)]
    samples = hourly + quarter + minutes
    result = provider.generate(
        SignalRequest(market="KRW-BTC", prompt="", samples=samples, current_price=Decimal(103_500_000))
    )
    assert result.signal_type in {"BUY", "SELL", "HOLD"}
    assert "SMA20 " in result.reasoning and "SMA60 " in result.reasoning and "RSI14 " in result.reasoning


def test_status_is_always_available():
    status = provider.status()
    assert status.available and not status.warning
    assert status.detail == "rule-based provider (no external AI)"
