"""GeminiSignalProvider against the fake Gemini (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.fakes.gemini import MODEL, PER_DAY_QUOTA, TEST_GEMINI_KEY, google_error, tokens_of
from tests.fakes.http import Fault, Response
from trading.clients.ai.base import (
    InvalidProviderResponseError,
    PricePoint,
    ProviderUnavailableError,
    QuotaExhaustedError,
    SignalProviderError,
    SignalRequest,
    TransientProviderError,
)
from trading.clients.ai.gemini import SYSTEM_INSTRUCTION, GeminiSignalProvider, next_quota_reset

PROMPT = "KRW-BTC last 450 samples (10 min): 100000000,100100000,99950000 ... current 100200000. Position: none."


def signal_request(prompt: str = PROMPT) -> SignalRequest:
    point = PricePoint(datetime(2026, 11, 23, tzinfo=UTC), Decimal(100_000_000))
    return SignalRequest(market="KRW-BTC", prompt=prompt, samples=[point], current_price=Decimal(100_000_000))


def tokens_metric(direction: str) -> float:
    return REGISTRY.get_sample_value("ai_tokens_total", {"provider": "gemini", "direction": direction}) or 0.0


def test_a_valid_answer_becomes_a_signal_with_token_counts(gemini_provider, fake_gemini):
    answer = {"signal": "BUY", "confidence": 0.87654, "reasoning": "Higher lows and rising volume."}
    fake_gemini.queue_answer(answer)
    fake_gemini.thoughts_tokens = 120
    before_input, before_output = tokens_metric("input"), tokens_metric("output")

    result = gemini_provider.generate(signal_request())

    assert (result.signal_type, result.confidence, result.reasoning) == (
        "BUY",
        Decimal("0.8765"),
        "Higher lows and rising volume.",
    )
    assert isinstance(result.confidence, Decimal)
    assert (result.provider, result.model_name) == ("gemini", MODEL)
    assert result.input_tokens == tokens_of(SYSTEM_INSTRUCTION + PROMPT)
    assert result.output_tokens == tokens_of(json.dumps(answer)) + 120  # thinking tokens are billed as output
    assert tokens_metric("input") - before_input == result.input_tokens
    assert tokens_metric("output") - before_output == result.output_tokens
    assert result.latency_ms >= 0


def test_a_longer_prompt_costs_more_input_tokens(gemini_provider):
    short = gemini_provider.generate(signal_request("short"))
    long = gemini_provider.generate(signal_request("x" * 4000))
    assert long.input_tokens - short.input_tokens == tokens_of(SYSTEM_INSTRUCTION + "x" * 4000) - tokens_of(
        SYSTEM_INSTRUCTION + "short"
    )


def test_the_request_uses_json_mode_and_the_key_header_only(gemini_provider, fake_gemini):
    gemini_provider.generate(signal_request())
    (call,) = fake_gemini.generate_calls()
    assert call.path == f"/v1beta/models/{MODEL}:generateContent"
    assert call.header("x-goog-api-key") == TEST_GEMINI_KEY
    assert TEST_GEMINI_KEY not in call.path + call.query
    payload = call.json()
    assert payload["contents"][0]["parts"][0]["text"] == PROMPT
    config = payload["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["temperature"] <= 0.3
    schema = config["responseSchema"]
    assert schema["properties"]["signal"] == {"type": "STRING", "enum": ["BUY", "SELL", "HOLD"]}
    assert schema["properties"]["confidence"] == {"type": "NUMBER"}
    assert set(schema["required"]) == {"signal", "confidence", "reasoning"}


def test_per_minute_quota_is_waited_out_then_succeeds(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.quota_per_minute(retry_delay="2s")
    fake_gemini.queue_answer({"signal": "SELL", "confidence": 0.7, "reasoning": "Lower highs."})
    result = gemini_provider.generate(signal_request())
    assert result.signal_type == "SELL"
    assert len(fake_gemini.generate_calls()) == 2
    assert wall_clock.sleeps == [2.0]  # the server's retryDelay, longer than the 1 s backoff


def test_per_minute_quota_honours_retry_after_when_there_is_no_retry_info(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.quota_per_minute(retry_delay=None, headers={"Retry-After": "3"})
    gemini_provider.generate(signal_request())
    assert wall_clock.sleeps == [3.0]


def test_per_minute_quota_beyond_the_retry_budget_is_raised_at_once(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.quota_per_minute(retry_delay="34s")
    with pytest.raises(QuotaExhaustedError) as raised:
        gemini_provider.generate(signal_request())
    assert (raised.value.per_day, raised.value.retry_after, raised.value.retryable) == (False, 34.0, True)
    assert "per-minute" in str(raised.value)
    assert len(fake_gemini.generate_calls()) == 1 and wall_clock.sleeps == []
    assert gemini_provider.generate(signal_request()).signal_type == "HOLD"  # no lasting effect


def test_per_day_quota_makes_the_provider_unavailable_until_midnight_pacific(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.quota_per_day()
    with pytest.raises(QuotaExhaustedError) as raised:
        gemini_provider.generate(signal_request())
    assert raised.value.per_day and not raised.value.retryable
    assert PER_DAY_QUOTA in str(raised.value)
    assert wall_clock.sleeps == []
    reset = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 15:00 UTC is 07:00 PST; next midnight PST is 08:00 UTC
    assert gemini_provider.unavailable_until == reset

    wall_clock.advance(hours=3)
    with pytest.raises(ProviderUnavailableError, match="2026-11-24T08:00:00"):
        gemini_provider.generate(signal_request())
    status = gemini_provider.status()
    assert (status.available, status.warning) == (True, True)
    assert "per-day quota" in status.detail
    assert len(fake_gemini.requests) == 1  # neither generate nor status went out

    wall_clock.now = reset
    assert gemini_provider.generate(signal_request()).signal_type == "HOLD"
    assert gemini_provider.status().warning is False


@pytest.mark.parametrize(
    ("moment", "reset"),
    [
        (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), datetime(2026, 7, 2, 7, 0, tzinfo=UTC)),  # PDT
        (datetime(2026, 1, 15, 7, 59, tzinfo=UTC), datetime(2026, 1, 15, 8, 0, tzinfo=UTC)),  # 23:59 PST
        (datetime(2026, 1, 15, 8, 0, tzinfo=UTC), datetime(2026, 1, 16, 8, 0, tzinfo=UTC)),  # exactly midnight
        (datetime(2026, 3, 8, 9, 0, tzinfo=UTC), datetime(2026, 3, 9, 7, 0, tzinfo=UTC)),  # DST starts that day
    ],
)
def test_quota_reset_is_the_next_midnight_in_pacific_time(moment, reset):
    assert next_quota_reset(moment) == reset


def test_server_errors_are_retried_with_backoff(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.server_error(503, times=2)
    assert gemini_provider.generate(signal_request()).signal_type == "HOLD"
    assert len(fake_gemini.generate_calls()) == 3
    assert len(wall_clock.sleeps) == 2 and 0.9 <= wall_clock.sleeps[0] <= 1.1 and 1.8 <= wall_clock.sleeps[1] <= 2.2


def test_persistent_server_errors_end_in_a_transient_error_after_four_attempts(gemini_provider, fake_gemini):
    fake_gemini.server_error(500, times=10)
    with pytest.raises(TransientProviderError, match="HTTP 500"):
        gemini_provider.generate(signal_request())
    assert len(fake_gemini.generate_calls()) == 4


def test_a_hanging_server_times_out_and_is_retried(fake_gemini, wall_clock):
    provider = GeminiSignalProvider(
        api_key=TEST_GEMINI_KEY, base_url=fake_gemini.url, model=MODEL, timeout=1.0, sleep=wall_clock.sleep
    )
    provider._timeout = 0.2  # settings require >= 1 s; a short timeout keeps this test quick
    fake_gemini.hang(5, times=1)
    assert provider.generate(signal_request()).signal_type == "HOLD"
    fake_gemini.hang(5, times=4)
    with pytest.raises(TransientProviderError, match=r"did not answer within 0\.2 s"):
        provider.generate(signal_request())
    provider.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I think you should buy.", "not JSON"),
        ('```json\n{"signal": "BUY", "confidence": 0.8', "not JSON"),
        ('["BUY", 0.8]', "not an object"),
        ('{"signal": "STRONG_BUY", "confidence": 0.8, "reasoning": "x"}', "not one of BUY, SELL, HOLD"),
        ('{"signal": "buy", "confidence": 0.8, "reasoning": "x"}', "not one of BUY, SELL, HOLD"),
        ('{"confidence": 0.8, "reasoning": "x"}', "not one of BUY, SELL, HOLD"),
        ('{"signal": "BUY", "confidence": 1.5, "reasoning": "x"}', "outside 0..1"),
        ('{"signal": "BUY", "confidence": -0.1, "reasoning": "x"}', "outside 0..1"),
        ('{"signal": "BUY", "confidence": "high", "reasoning": "x"}', "not a number"),
        ('{"signal": "BUY", "confidence": true, "reasoning": "x"}', "not a number"),
        ('{"signal": "BUY", "confidence": "NaN", "reasoning": "x"}', "outside 0..1"),
        ('{"signal": "BUY", "confidence": 0.8}', "reasoning is missing"),
        ('{"signal": "BUY", "confidence": 0.8, "reasoning": "  "}', "reasoning is missing"),
    ],
)
def test_malformed_or_out_of_schema_answers_are_refused_and_not_retried(gemini_provider, fake_gemini, text, message):
    fake_gemini.queue_text(text)
    with pytest.raises(InvalidProviderResponseError, match=message):
        gemini_provider.generate(signal_request())
    assert len(fake_gemini.generate_calls()) == 1


def test_a_fenced_json_answer_and_a_numeric_string_are_accepted(gemini_provider, fake_gemini):
    fake_gemini.queue_text('```json\n{"signal": "HOLD", "confidence": "0.61", "reasoning": "Range."}\n```')
    result = gemini_provider.generate(signal_request())
    assert (result.signal_type, result.confidence) == ("HOLD", Decimal("0.6100"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 10}},
            "blockReason SAFETY",
        ),
        ({"candidates": [{"finishReason": "MAX_TOKENS", "content": {"parts": []}}]}, "finishReason MAX_TOKENS"),
        ("<html>proxy error</html>", "not JSON"),
        ([1, 2], "not an object"),
    ],
)
def test_answers_without_candidate_text_are_refused(gemini_provider, fake_gemini, body, message):
    fake_gemini.queue_response(Response(200, body))
    with pytest.raises(InvalidProviderResponseError, match=message):
        gemini_provider.generate(signal_request())


def test_a_wrong_key_is_refused_without_retry_and_without_echoing_it(fake_gemini, wall_clock):
    wrong_key = "AIzaSy-wrong-key-should-never-be-printed"
    provider = GeminiSignalProvider(
        api_key=wrong_key, base_url=fake_gemini.url, model=MODEL, timeout=1.0, sleep=wall_clock.sleep
    )
    with pytest.raises(SignalProviderError, match="refused the API key") as raised:
        provider.generate(signal_request())
    assert not raised.value.retryable and wrong_key not in str(raised.value)
    assert len(fake_gemini.generate_calls()) == 1
    status = provider.status()
    assert not status.available and status.detail == "Gemini refused the API key (HTTP 400)"
    provider.close()


def test_an_unknown_model_is_a_clear_non_retryable_error(fake_gemini, wall_clock):
    provider = GeminiSignalProvider(
        api_key=TEST_GEMINI_KEY, base_url=fake_gemini.url, model="gemini-9", timeout=1.0, sleep=wall_clock.sleep
    )
    with pytest.raises(SignalProviderError, match=r"HTTP 404\): NOT_FOUND models/gemini-9 is not found"):
        provider.generate(signal_request())
    assert wall_clock.sleeps == []
    provider.close()


def test_status_lists_models_with_the_key_header(gemini_provider, fake_gemini):
    status = gemini_provider.status()
    assert (status.available, status.warning) == (True, False)
    assert status.detail == f"Gemini reachable (model {MODEL})"
    (call,) = fake_gemini.calls("/v1beta/models", "GET")
    assert call.header("x-goog-api-key") == TEST_GEMINI_KEY and call.query == ""


def test_status_reports_an_unreachable_or_hanging_service(gemini_provider, fake_gemini):
    fake_gemini.hang(5, path="/v1beta/models")
    status = gemini_provider.status()
    assert not status.available and status.detail == "Gemini did not answer within 0.5 s"
    fake_gemini.add_fault(Fault.status(429), path="/v1beta/models")
    assert gemini_provider.status().warning
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nobody = GeminiSignalProvider(
        api_key=TEST_GEMINI_KEY, base_url=f"http://127.0.0.1:{closed_port}", model=MODEL, timeout=1.0
    )
    status = nobody.status()
    assert not status.available and status.detail == "Gemini unreachable (ConnectionError)"
    with pytest.raises(TransientProviderError, match=r"unreachable \(ConnectionError\)"):
        nobody._generate_once(signal_request())
    nobody.close()


def test_the_key_never_reaches_logs_exceptions_or_status(fake_gemini, wall_clock, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    provider = GeminiSignalProvider(
        api_key=TEST_GEMINI_KEY, base_url=fake_gemini.url, model=MODEL, timeout=1.0, sleep=wall_clock.sleep
    )
    texts = [repr(provider)]
    fake_gemini.server_error(503, times=2)
    fake_gemini.quota_per_minute(retry_delay="1s")
    provider.generate(signal_request())
    for program in (
        lambda: fake_gemini.queue_text("nonsense"),
        lambda: fake_gemini.queue_response(
            Response(400, google_error(400, "INVALID_ARGUMENT", f"echo of {TEST_GEMINI_KEY}"))
        ),
        lambda: fake_gemini.server_error(500, times=4),
        lambda: fake_gemini.quota_per_day(),
    ):
        program()
        with pytest.raises(Exception) as raised:
            provider.generate(signal_request())
        texts += [str(raised.value), repr(raised.value)]
    with pytest.raises(ProviderUnavailableError) as raised:
        provider.generate(signal_request())
    texts += [str(raised.value), provider.status().detail]
    captured = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, captured.out, captured.err])
    assert "echo of ***" in everything  # the server's echo was masked, not dropped
    assert TEST_GEMINI_KEY not in everything
    assert "key=" not in everything
    provider.close()


def test_the_fake_refuses_a_key_in_the_url_or_no_key(fake_gemini):
    import requests

    with_query = requests.post(
        f"{fake_gemini.url}/v1beta/models/{MODEL}:generateContent?key={TEST_GEMINI_KEY}", json={}, timeout=2
    )
    assert with_query.status_code == 400 and "x-goog-api-key" in with_query.text
    anonymous = requests.get(f"{fake_gemini.url}/v1beta/models", timeout=2)
    assert anonymous.status_code == 403 and anonymous.json()["error"]["status"] == "PERMISSION_DENIED"


def test_a_provider_needs_a_key():
    with pytest.raises(ValueError, match="needs an API key"):
        GeminiSignalProvider(api_key="", base_url="http://127.0.0.1:9", model=MODEL, timeout=1)


def test_quota_reset_passes_by_the_clock(gemini_provider, fake_gemini, wall_clock):
    fake_gemini.quota_per_day()
    with pytest.raises(QuotaExhaustedError):
        gemini_provider.generate(signal_request())
    wall_clock.advance(days=1)
    assert gemini_provider.unavailable_until is None
    assert gemini_provider.generate(signal_request()).signal_type == "HOLD"
    assert wall_clock.now - timedelta(days=1) < datetime(2026, 11, 24, 8, tzinfo=UTC)
