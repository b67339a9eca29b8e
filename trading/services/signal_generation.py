"""Generate one AI trading signal: sample → compact prompt → provider → ``TradingSignal``.

* The provider call happens outside any transaction, with the DB connection
  given back first; the signal is stored afterwards in one short transaction.
* A malformed answer (``InvalidProviderResponseError``, an unknown action, a
  confidence outside [0, 1]) becomes a HOLD with confidence 0 and the reason
  in ``reasoning`` — never an order.
* Quota exhausted / provider unavailable / transient errors after the
  client's retries are *raised*: no signal is stored (a HOLD would be mistaken
  for a market judgement in the signal history); the job records the failure
  (job metric, ``job_failures_total``) and the next cycle tries again.
* The confidence is re-checked against the formula stated in the prompt
  (``trading.services.prompt``).
* Token counts: the prompt's estimate is logged; the provider's actual
  counts are stored on the signal and logged. ``ai_tokens_total`` is counted
  by the provider client itself (counting it here too would double it);
  ``ai_estimated_cost_krw_total`` is counted here (cost per 1,000 tokens from
  config, Decimal, converted to float only at the metric).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import structlog
from django.conf import settings
from django.db import transaction

from health import metrics
from trading.clients.ai.base import InvalidProviderResponseError, SignalProvider, SignalRequest, SignalResult
from trading.models import MarketData, TradingSignal
from trading.services import config as config_service
from trading.services import position as position_service
from trading.services import prompt as prompt_service
from trading.services.order_execution import release_connection
from trading.services.sampling import MarketDataSampler

logger = structlog.get_logger(__name__)

VALID_TYPES = {choice.value for choice in TradingSignal.SignalType}


class NoMarketDataError(Exception):
    """There is no stored market data to build a prompt from yet."""


def _mask(text: str) -> str:
    try:
        from health import masking
    except ImportError:  # pragma: no cover - masking ships with the observability issue
        return text
    mask_text = getattr(masking, "mask_text", None)
    return mask_text(text) if mask_text else text


def _get_provider() -> SignalProvider:
    from trading.clients.ai import get_signal_provider

    return get_signal_provider()


def generate_trading_signal(
    *, provider: SignalProvider | None = None, sampler: MarketDataSampler | None = None
) -> TradingSignal:
    """Ask the provider for a signal on the latest data and store it."""
    market = settings.TRADING_MARKET
    latest = MarketData.objects.filter(symbol=market).order_by("-timestamp").first()
    if latest is None:
        raise NoMarketDataError(f"no market data for {market} yet; collect_market_data must run first")
    ranges = (sampler or MarketDataSampler(market)).sample_ranges()
    position = position_service.get_position(market)
    prompt_text = prompt_service.build_prompt(
        market,
        ranges,
        current_price=latest.trade_price,
        position_quantity=position.quantity,
        average_buy_price=position.average_buy_price,
    )
    estimated_tokens = prompt_service.estimate_tokens(prompt_text)
    inputs = prompt_service.ConfidenceInputs.from_ranges(ranges)
    logger.info("signal_prompt_built", sample_points=len(ranges.points), estimated_input_tokens=estimated_tokens)
    logger.debug("signal_prompt", prompt=_mask(prompt_text))
    request = SignalRequest(
        market=market,
        prompt=prompt_text,
        samples=ranges.points,
        current_price=latest.trade_price,
        position_quantity=position.quantity,
        average_buy_price=position.average_buy_price,
        extra={"estimated_input_tokens": estimated_tokens},
    )
    provider = provider or _get_provider()
    release_connection()  # no DB connection held while the AI thinks
    try:
        result = provider.generate(request)
    except InvalidProviderResponseError as error:
        logger.warning("signal_invalid_response", provider=provider.name, error=str(error)[:300])
        return _store_hold(provider, latest, f"invalid AI response, treated as HOLD: {error}"[:2000])
    except Exception as error:
        logger.error(
            "signal_generation_failed", provider=provider.name, error_type=type(error).__name__, error=str(error)
        )
        raise
    return _store_result(result, latest, inputs, estimated_tokens, recheck=provider.follows_prompt_confidence_formula)


def _store_hold(provider: SignalProvider, latest: MarketData, reasoning: str) -> TradingSignal:
    with transaction.atomic():
        signal = TradingSignal.objects.create(
            signal_type=TradingSignal.SignalType.HOLD,
            confidence=Decimal("0"),
            reasoning=reasoning,
            market_data=latest,
            provider=provider.name,
            model_name=provider.model_name or "",
        )
    logger.info("signal_generated", signal_id=signal.pk, signal_type="HOLD", confidence="0", invalid_answer=True)
    return signal


def _validated(result: SignalResult) -> tuple[str, Decimal] | str:
    """``(type, confidence)`` or the reason the answer is unusable."""
    signal_type = str(result.signal_type or "").strip().upper()
    if signal_type not in VALID_TYPES:
        return f"unknown action {result.signal_type!r}"
    try:
        confidence = Decimal(str(result.confidence))
    except (InvalidOperation, ValueError):
        return f"confidence {result.confidence!r} is not a number"
    if not confidence.is_finite() or not Decimal("0") <= confidence <= Decimal("1"):
        return f"confidence {result.confidence!r} is outside [0, 1]"
    return signal_type, confidence.quantize(prompt_service.FOUR_PLACES)


def _cost_krw(input_tokens: int, output_tokens: int) -> Decimal:
    rates = config_service.get_many(("ai_input_cost_krw_per_1k_tokens", "ai_output_cost_krw_per_1k_tokens"))
    return (
        Decimal(input_tokens) * rates["ai_input_cost_krw_per_1k_tokens"]
        + Decimal(output_tokens) * rates["ai_output_cost_krw_per_1k_tokens"]
    ) / Decimal(1000)


def _store_result(
    result: SignalResult,
    latest: MarketData,
    inputs: prompt_service.ConfidenceInputs,
    estimated_tokens: int,
    *,
    recheck: bool = True,
) -> TradingSignal:
    validated = _validated(result)
    reasoning = (result.reasoning or "").strip()
    if isinstance(validated, str):
        signal_type, confidence = TradingSignal.SignalType.HOLD, Decimal("0")
        reasoning = f"invalid AI response, treated as HOLD: {validated}. {reasoning}".strip()
        adjusted = False
    else:
        signal_type, answered = validated
        confidence, adjusted = answered, False
        if recheck:  # only answers that were asked to follow the prompt's formula are held to it
            checked = prompt_service.recheck_confidence(signal_type, answered, inputs)
            confidence, adjusted = checked.confidence, checked.adjusted
        if adjusted:
            reasoning = f"{reasoning} {checked.note}".strip()
    input_tokens, output_tokens = max(int(result.input_tokens), 0), max(int(result.output_tokens), 0)
    with transaction.atomic():
        signal = TradingSignal.objects.create(
            signal_type=signal_type,
            confidence=confidence,
            reasoning=reasoning[:4000],
            market_data=latest,
            provider=result.provider[:40],
            model_name=(result.model_name or "")[:80],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=max(int(result.latency_ms), 0),
        )
    cost = _cost_krw(input_tokens, output_tokens)
    metrics.AI_COST_KRW.labels(provider=signal.provider).inc(float(cost))
    logger.info(
        "signal_generated",
        signal_id=signal.pk,
        signal_type=signal.signal_type,
        confidence=str(signal.confidence),
        confidence_adjusted=adjusted,
        provider=signal.provider,
        model_name=signal.model_name,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        estimated_input_tokens=estimated_tokens,
        latency_ms=signal.latency_ms,
        cost_krw=str(cost.quantize(Decimal("0.0001"))),
    )
    return signal
