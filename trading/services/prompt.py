"""The compact signal prompt, its token estimate, and the explicit confidence formula.

Prompt (seed 002 "완료된 최적화": 10,000 → ≤ 4,000 input tokens, no
performance-feedback section, explicit confidence formula): a short
instruction, the position, the formula with its inputs already computed, and
the three sampled series as comma-separated prices in thousands of KRW.

Confidence formula (stated in the prompt and re-checked on the answer)::

    confidence = 0.4 * trend_agreement + 0.3 * momentum_strength + 0.3 * volatility_factor

each input in [0, 1], computed for the action the answer chose:

* trend direction of a series = up / down / flat: last vs first point, flat
  when the change is within ±0.1 %.
* trend_agreement: BUY → share of the 3 series going up; SELL → share going
  down; HOLD → 1 - |ups - downs| / 3 (mixed or flat trends favour holding).
* change_24h_pct = (last short price - first mid price) / first mid price * 100.
  momentum_strength: BUY → clamp(change_24h_pct / 3); SELL → clamp(-change_24h_pct / 3);
  HOLD → 1 - clamp(|change_24h_pct| / 3).
* range_24h_pct = (max - min) / last * 100 over the mid and short series.
  volatility_factor = 1 - clamp(range_24h_pct / 10).

Re-check rule: the service recomputes the formula for the answer's action
from the same samples; when the answer's confidence differs from it by more
than ``CONFIDENCE_TOLERANCE`` (0.15), the recomputed value replaces it and the
reasoning records both numbers.

Token estimate (no tokenizer dependency, deliberately pessimistic for
numbers): every digit counts as one token (Gemini's tokenizer splits digits),
every other run of characters as ``ceil(len / 4)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from trading.clients.ai.base import PricePoint
from trading.services.sampling import SampledRanges

MAX_INPUT_TOKENS = 4000
CONFIDENCE_TOLERANCE = Decimal("0.15")
FLAT_CHANGE_PCT = Decimal("0.1")
MOMENTUM_SCALE_PCT = Decimal("3")
VOLATILITY_SCALE_PCT = Decimal("10")
WEIGHTS = (Decimal("0.4"), Decimal("0.3"), Decimal("0.3"))
ONE = Decimal("1")
ZERO = Decimal("0")
FOUR_PLACES = Decimal("0.0001")

_DIGITS_OR_TEXT = re.compile(r"\d|[^\d]+")


def estimate_tokens(text: str) -> int:
    """Pessimistic tokenizer-free estimate: one token per digit, one per 4 other characters."""
    total = 0
    for piece in _DIGITS_OR_TEXT.findall(text):
        total += 1 if piece.isdigit() else math.ceil(len(piece) / 4)
    return total


def _clamp(value: Decimal) -> Decimal:
    return min(max(value, ZERO), ONE)


def _direction(points: list[PricePoint]) -> int:
    if len(points) < 2 or points[0].price <= 0:
        return 0
    change_pct = (points[-1].price - points[0].price) / points[0].price * 100
    if abs(change_pct) <= FLAT_CHANGE_PCT:
        return 0
    return 1 if change_pct > 0 else -1


@dataclass(frozen=True)
class ConfidenceInputs:
    directions: tuple[int, int, int]  # long, mid, short: 1 up, -1 down, 0 flat
    change_24h_pct: Decimal
    range_24h_pct: Decimal

    @classmethod
    def from_ranges(cls, ranges: SampledRanges) -> ConfidenceInputs:
        recent = [*ranges.mid, *ranges.short]
        change = range_pct = ZERO
        if recent and recent[0].price > 0 and recent[-1].price > 0:
            change = (recent[-1].price - recent[0].price) / recent[0].price * 100
            prices = [point.price for point in recent]
            range_pct = (max(prices) - min(prices)) / recent[-1].price * 100
        return cls(
            directions=(_direction(ranges.long), _direction(ranges.mid), _direction(ranges.short)),
            change_24h_pct=change.quantize(Decimal("0.01")),
            range_24h_pct=range_pct.quantize(Decimal("0.01")),
        )

    def components(self, action: str) -> tuple[Decimal, Decimal, Decimal]:
        ups = sum(1 for d in self.directions if d > 0)
        downs = sum(1 for d in self.directions if d < 0)
        change = self.change_24h_pct / MOMENTUM_SCALE_PCT
        if action == "BUY":
            agreement, momentum = Decimal(ups) / 3, _clamp(change)
        elif action == "SELL":
            agreement, momentum = Decimal(downs) / 3, _clamp(-change)
        else:
            agreement, momentum = ONE - Decimal(abs(ups - downs)) / 3, ONE - _clamp(abs(change))
        volatility = ONE - _clamp(self.range_24h_pct / VOLATILITY_SCALE_PCT)
        return agreement, momentum, volatility

    def confidence(self, action: str) -> Decimal:
        value = sum(w * c for w, c in zip(WEIGHTS, self.components(action), strict=True))
        return _clamp(value).quantize(FOUR_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class CheckedConfidence:
    confidence: Decimal
    adjusted: bool
    note: str


def recheck_confidence(action: str, answered: Decimal, inputs: ConfidenceInputs) -> CheckedConfidence:
    """Apply the re-check rule: beyond the tolerance the formula's value replaces the answer's."""
    expected = inputs.confidence(action)
    if abs(answered - expected) <= CONFIDENCE_TOLERANCE:
        return CheckedConfidence(confidence=answered, adjusted=False, note="")
    note = (
        f"[confidence adjusted: answer {answered} differs from the formula's {expected} "
        f"by more than {CONFIDENCE_TOLERANCE}]"
    )
    return CheckedConfidence(confidence=expected, adjusted=True, note=note)


def _series(points: list[PricePoint]) -> str:
    return ",".join(str((point.price / 1000).quantize(ONE)) for point in points)


_DIRECTION_WORD = {1: "up", -1: "down", 0: "flat"}


def build_prompt(
    market: str,
    ranges: SampledRanges,
    *,
    current_price: Decimal,
    position_quantity: Decimal,
    average_buy_price: Decimal,
) -> str:
    """The compact prompt for one signal (no performance feedback)."""
    inputs = ConfidenceInputs.from_ranges(ranges)
    long_d, mid_d, short_d = (_DIRECTION_WORD[d] for d in inputs.directions)
    holding = (
        f"holding {position_quantity.normalize()} BTC, avg {average_buy_price.quantize(ONE)} KRW"
        if position_quantity > 0
        else "no position"
    )
    return "\n".join(
        [
            f"You trade {market} spot. Decide BUY, SELL or HOLD.",
            f"Price now {current_price.quantize(ONE)} KRW; {holding}.",
            'Answer only JSON: {"signal":"BUY|SELL|HOLD","confidence":0..1,"reasoning":"<=2 sentences"}',
            "confidence = 0.4*trend_agreement + 0.3*momentum_strength + 0.3*volatility_factor, each in [0,1]:",
            "trend_agreement: BUY=share of the 3 trends up; SELL=share down; HOLD=1-|ups-downs|/3.",
            "momentum_strength: BUY=clamp(chg24/3); SELL=clamp(-chg24/3); HOLD=1-clamp(|chg24|/3).",
            "volatility_factor=1-clamp(range24/10).",
            f"Inputs: trends long={long_d} mid={mid_d} short={short_d}; "
            f"chg24={inputs.change_24h_pct}%; range24={inputs.range_24h_pct}%.",
            "Prices in thousand KRW, oldest first.",
            f"Hourly, {len(ranges.long)} h: {_series(ranges.long)}",
            f"15-min, {len(ranges.mid)} pts: {_series(ranges.mid)}",
            f"1-min, {len(ranges.short)} pts: {_series(ranges.short)}",
        ]
    )
