"""generate_trading_signal: sample → prompt → provider (fake Gemini / rule-based) → TradingSignal."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from tests.factories import bulk_market_data, make_market_data
from trading.clients.ai.base import QuotaExhaustedError
from trading.clients.ai.rule_based import RuleBasedSignalProvider
from trading.models import Order, TradingSignal
from trading.services import prompt as prompt_service
from trading.services.sampling import MarketDataSampler
from trading.services.signal_generation import NoMarketDataError, generate_trading_signal

pytestmark = pytest.mark.django_db


@pytest.fixture
def rising_market():
    """Two days of 1-minute data, rising steadily: +1,000 KRW a minute."""
    now = timezone.now()
    rows = []
    for minute in range(2 * 24 * 60, -1, -1):
        rows.append((Decimal("100000000") - minute * Decimal("1000"), now - timedelta(minutes=minute)))
    bulk_market_data(rows)
    return now


def _prompt_of(request) -> str:
    return request.json()["contents"][0]["parts"][0]["text"]


def _cost() -> float:
    return REGISTRY.get_sample_value("ai_estimated_cost_krw_total", {"provider": "gemini"}) or 0.0


def test_gemini_signal_is_stored_with_tokens_latency_and_cost(rising_market, fake_gemini, gemini_provider) -> None:
    expected = prompt_service.ConfidenceInputs.from_ranges(MarketDataSampler().sample_ranges()).confidence("BUY")
    fake_gemini.queue_answer({"signal": "BUY", "confidence": float(expected), "reasoning": "Uptrend on all ranges."})
    cost_before = _cost()

    signal = generate_trading_signal(provider=gemini_provider)

    assert signal.signal_type == "BUY"
    assert signal.confidence == expected
    assert signal.provider == "gemini" and signal.model_name
    assert signal.input_tokens > 0 and signal.output_tokens > 0
    assert signal.market_data == TradingSignal.objects.get(pk=signal.pk).market_data
    assert signal.market_data.timestamp == rising_market  # the latest row
    prompt_text = _prompt_of(fake_gemini.generate_calls()[0])
    assert prompt_service.estimate_tokens(prompt_text) <= prompt_service.MAX_INPUT_TOKENS
    assert "confidence = 0.4*trend_agreement" in prompt_text
    assert "feedback" not in prompt_text.lower()
    cost = (Decimal(signal.input_tokens) * Decimal("0.42") + Decimal(signal.output_tokens) * Decimal("3.5")) / 1000
    assert _cost() - cost_before == pytest.approx(float(cost))


def test_confidence_far_from_the_formula_is_replaced_and_explained(rising_market, fake_gemini, gemini_provider) -> None:
    fake_gemini.queue_answer({"signal": "SELL", "confidence": 0.95, "reasoning": "Feels toppy."})

    signal = generate_trading_signal(provider=gemini_provider)

    expected = prompt_service.ConfidenceInputs.from_ranges(MarketDataSampler().sample_ranges()).confidence("SELL")
    assert signal.signal_type == "SELL"
    assert signal.confidence == expected < Decimal("0.5")  # SELL into a rising market: trend and momentum are 0
    assert "confidence adjusted" in signal.reasoning and "0.95" in signal.reasoning


@pytest.mark.parametrize(
    "answer",
    [
        "this is not json",
        json.dumps({"signal": "YOLO", "confidence": 0.9, "reasoning": "x"}),
        json.dumps({"signal": "BUY", "confidence": 7, "reasoning": "x"}),
    ],
)
def test_malformed_answer_becomes_a_hold_never_an_order(rising_market, fake_gemini, gemini_provider, answer) -> None:
    fake_gemini.queue_text(answer)

    signal = generate_trading_signal(provider=gemini_provider)

    assert signal.signal_type == "HOLD"
    assert signal.confidence == 0
    assert signal.reasoning.startswith("invalid AI response")
    from trading.services.order_execution import execute_signal

    assert execute_signal(signal) is None
    assert Order.objects.count() == 0


def test_daily_quota_is_raised_and_nothing_is_stored(rising_market, fake_gemini, gemini_provider) -> None:
    fake_gemini.quota_per_day()

    with pytest.raises(QuotaExhaustedError):
        generate_trading_signal(provider=gemini_provider)

    assert TradingSignal.objects.count() == 0


def test_rule_based_provider_through_the_factory(rising_market, settings) -> None:
    from trading.clients.ai import reset_signal_provider

    settings.GEMINI_API_KEY = ""
    reset_signal_provider()
    try:
        signal = generate_trading_signal()
    finally:
        reset_signal_provider()
    assert signal.provider == "rule_based"
    assert signal.signal_type in {"BUY", "SELL", "HOLD"}
    assert Decimal("0") <= signal.confidence <= Decimal("1")
    assert signal.input_tokens == 0


def test_rule_based_confidence_is_stored_as_the_rule_computed_it(rising_market) -> None:
    """The prompt's formula re-check is for LLM answers; the rule's own formula is not overridden."""
    answers = []

    class Recording(RuleBasedSignalProvider):
        def generate(self, request):
            answers.append(super().generate(request))
            return answers[-1]

    signal = generate_trading_signal(provider=Recording())
    assert (signal.signal_type, signal.confidence) == (answers[0].signal_type, answers[0].confidence)
    assert "confidence adjusted" not in signal.reasoning


def test_out_of_range_result_from_a_provider_becomes_hold(rising_market) -> None:
    class Broken(RuleBasedSignalProvider):
        def generate(self, request):
            result = super().generate(request)
            from dataclasses import replace

            return replace(result, signal_type="MOON", confidence=Decimal("2"))

    signal = generate_trading_signal(provider=Broken())
    assert signal.signal_type == "HOLD" and "unknown action" in signal.reasoning


def test_no_market_data_is_a_clear_error() -> None:
    with pytest.raises(NoMarketDataError):
        generate_trading_signal(provider=RuleBasedSignalProvider())
    make_market_data(Decimal("1"), timezone.now())
    assert generate_trading_signal(provider=RuleBasedSignalProvider()).signal_type == "HOLD"
