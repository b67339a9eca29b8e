"""Compact prompt: token budget, no feedback section, the confidence formula and its re-check rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.clients.ai.base import PricePoint
from trading.services.prompt import (
    CONFIDENCE_TOLERANCE,
    MAX_INPUT_TOKENS,
    ConfidenceInputs,
    build_prompt,
    estimate_tokens,
    recheck_confidence,
)
from trading.services.sampling import SampledRanges

T0 = datetime(2026, 11, 1, tzinfo=UTC)
D = Decimal


def _series(count: int, start: Decimal, step: Decimal, every: timedelta) -> list[PricePoint]:
    return [PricePoint(T0 + every * i, start + step * i) for i in range(count)]


def _ranges(long_step="10000", mid_step="10000", short_step="10000", base="150123456") -> SampledRanges:
    return SampledRanges(
        long=_series(336, D(base), D(long_step), timedelta(hours=1)),
        mid=_series(96, D(base), D(mid_step), timedelta(minutes=15)),
        short=_series(12, D(base), D(short_step), timedelta(minutes=1)),
    )


def test_token_estimate_counts_digits_one_by_one() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("12345") == 5
    assert estimate_tokens("a1,2") == 1 + 1 + 1 + 1


def test_full_sample_prompt_stays_under_the_token_budget() -> None:
    ranges = _ranges()
    text = build_prompt(
        "KRW-BTC", ranges, current_price=D("150123456"), position_quantity=D("0.0123"), average_buy_price=D("1")
    )
    assert len(ranges.points) == 444
    assert estimate_tokens(text) <= MAX_INPUT_TOKENS
    assert len(text) / 4 < estimate_tokens(text)  # the estimate is the pessimistic one
    lowered = text.lower()
    assert "feedback" not in lowered and "performance" not in lowered and "win rate" not in lowered
    assert "confidence = 0.4*trend_agreement + 0.3*momentum_strength + 0.3*volatility_factor" in text
    assert "150123" in text  # prices in thousand KRW
    assert "holding 0.0123 BTC" in text


def _rising() -> SampledRanges:
    """One continuous rising market: +10,000 KRW per point at every resolution."""
    return SampledRanges(
        long=_series(336, D("97000000"), D("10000"), timedelta(hours=1)),
        mid=_series(96, D("100000000"), D("10000"), timedelta(minutes=15)),  # ends 100,950,000
        short=_series(12, D("100960000"), D("10000"), timedelta(minutes=1)),  # ends 101,070,000
    )


def test_formula_inputs_and_values() -> None:
    rising = ConfidenceInputs.from_ranges(_rising())
    assert rising.directions == (1, 1, 1)  # short: +0.109 % is beyond the ±0.1 % flat band
    assert rising.change_24h_pct == D("1.07")  # 100,000,000 → 101,070,000
    assert rising.range_24h_pct == D("1.06")  # 1,070,000 / 101,070,000
    volatility = D("0.3") * (1 - D("1.06") / 10)
    assert rising.confidence("BUY") == (D("0.4") + D("0.3") * D("1.07") / 3 + volatility).quantize(D("0.0001"))
    assert rising.confidence("SELL") == volatility.quantize(D("0.0001"))
    hold = D("0.4") * 0 + D("0.3") * (1 - D("1.07") / 3) + volatility
    assert rising.confidence("HOLD") == hold.quantize(D("0.0001"))


def test_flat_and_mixed_trends() -> None:
    flat = ConfidenceInputs.from_ranges(_ranges("0", "0", "0"))
    assert flat.directions == (0, 0, 0)
    assert flat.confidence("HOLD") == D("1.0000")
    assert flat.confidence("BUY") == D("0.3000")
    empty = ConfidenceInputs.from_ranges(SampledRanges())
    assert empty.change_24h_pct == 0 and empty.confidence("HOLD") == D("1.0000")


def test_recheck_keeps_close_answers_and_replaces_far_ones() -> None:
    inputs = ConfidenceInputs.from_ranges(_rising())
    expected = inputs.confidence("BUY")
    kept = recheck_confidence("BUY", expected + CONFIDENCE_TOLERANCE, inputs)
    assert kept.confidence == expected + CONFIDENCE_TOLERANCE and not kept.adjusted and kept.note == ""
    replaced = recheck_confidence("BUY", expected + CONFIDENCE_TOLERANCE + D("0.0001"), inputs)
    assert replaced.adjusted and replaced.confidence == expected
    assert str(expected) in replaced.note
