"""Google Gemini as the signal provider (REST ``generateContent`` in JSON response mode).

Why REST and not an SDK: one endpoint, a schema-constrained answer and the
quota error details are all this needs, and ``requests`` gives exact control
of timeouts and of where the key travels (the ``x-goog-api-key`` header —
never the URL, never a log line or an exception message).

Errors:

- 429 ``RESOURCE_EXHAUSTED`` with a per-minute ``QuotaFailure`` →
  ``QuotaExhaustedError(per_day=False, retry_after=...)``: the shared retry
  policy waits it out when ``retryDelay`` (or ``Retry-After``) fits in its 7 s
  budget, else it is raised;
- 429 with a per-day quota → ``QuotaExhaustedError(per_day=True)``, never
  retried; the provider then declares itself unavailable until the quota
  resets at midnight Pacific time (Google's reset time for Gemini API daily
  quotas). Until then ``generate`` raises ``ProviderUnavailableError`` without
  any HTTP call and ``status()`` reports a warning. The mark is per process;
- 5xx, timeouts and connection errors → ``TransientProviderError`` (retried);
- a malformed or out-of-schema answer → ``InvalidProviderResponseError``
  (the caller records a HOLD; never an order).

Token counts: input = ``promptTokenCount``; output = ``candidatesTokenCount``
plus ``thoughtsTokenCount`` (thinking tokens of 2.5 models are billed as
output).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import requests
import structlog

from health.metrics import AI_TOKENS
from trading.clients.ai.base import (
    InvalidProviderResponseError,
    ProviderStatus,
    ProviderUnavailableError,
    QuotaExhaustedError,
    SignalProvider,
    SignalProviderError,
    SignalRequest,
    SignalResult,
    TransientProviderError,
)
from trading.clients.retry import call_with_retry

logger = structlog.get_logger(__name__)

QUOTA_RESET_ZONE = ZoneInfo("America/Los_Angeles")
SIGNALS = ("BUY", "SELL", "HOLD")
CONFIDENCE_PLACES = Decimal("0.0001")
MAX_REASONING_CHARS = 2000
SYSTEM_INSTRUCTION = (
    "You are a cautious trading assistant for the Upbit KRW-BTC market. "
    "Answer with one trading signal (BUY, SELL or HOLD), a confidence between 0 and 1, "
    "and a short reasoning. Prefer HOLD when the evidence is weak."
)
RESPONSE_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "signal": {"type": "STRING", "enum": list(SIGNALS)},
        "confidence": {"type": "NUMBER"},
        "reasoning": {"type": "STRING"},
    },
    "required": ["signal", "confidence", "reasoning"],
    "propertyOrdering": ["signal", "confidence", "reasoning"],
}


def next_quota_reset(moment: datetime) -> datetime:
    """The next midnight in Pacific time after ``moment``, as aware UTC."""
    local = moment.astimezone(QUOTA_RESET_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=QUOTA_RESET_ZONE)
    return midnight.astimezone(UTC)


def _parse_delay(text: Any) -> float | None:
    """``"34s"`` / ``"1.5s"`` (protobuf Duration) or ``"34"`` (Retry-After seconds) → seconds."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*s?\s*", str(text))
    return float(match.group(1)) if match else None


class GeminiSignalProvider(SignalProvider):
    """Signals from Gemini's ``generateContent``; ``sleep`` and ``clock`` are injectable for tests."""

    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float,
        status_timeout: float = 3.0,
        temperature: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        session: requests.Session | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("GeminiSignalProvider needs an API key")
        self.model_name = model
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._status_timeout = min(status_timeout, timeout)
        self._temperature = temperature
        self._sleep = sleep
        self._clock = clock
        self._session = session or requests.Session()
        self._session.headers.update({"x-goog-api-key": api_key, "Content-Type": "application/json"})
        self._unavailable_until: datetime | None = None

    def __repr__(self) -> str:  # never the key
        return f"GeminiSignalProvider(model={self.model_name!r})"

    # -- public -----------------------------------------------------------------------
    @property
    def unavailable_until(self) -> datetime | None:
        """When the per-day quota resets, while it is exhausted; else ``None``."""
        if self._unavailable_until is not None and self._clock() >= self._unavailable_until:
            self._unavailable_until = None
        return self._unavailable_until

    def generate(self, request: SignalRequest) -> SignalResult:
        until = self.unavailable_until
        if until is not None:
            raise ProviderUnavailableError(
                f"Gemini per-day quota exhausted; no requests until {until.isoformat()} (midnight Pacific time)"
            )
        started = time.monotonic()
        try:
            body = call_with_retry("gemini.generate", self._generate_once, request, sleep=self._sleep)
        except QuotaExhaustedError as error:
            if error.per_day:
                self._unavailable_until = next_quota_reset(self._clock())
                logger.warning(
                    "gemini_daily_quota_exhausted", model=self.model_name, until=self._unavailable_until.isoformat()
                )
            raise
        latency_ms = int((time.monotonic() - started) * 1000)
        signal, confidence, reasoning = self._parse_answer(body)
        usage = body.get("usageMetadata") or {}
        input_tokens = self._count(usage.get("promptTokenCount"))
        output_tokens = self._count(usage.get("candidatesTokenCount")) + self._count(usage.get("thoughtsTokenCount"))
        AI_TOKENS.labels(provider=self.name, direction="input").inc(input_tokens)
        AI_TOKENS.labels(provider=self.name, direction="output").inc(output_tokens)
        return SignalResult(
            signal_type=signal,
            confidence=confidence,
            reasoning=reasoning,
            provider=self.name,
            model_name=str(body.get("modelVersion") or self.model_name),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=latency_ms,
        )

    def status(self) -> ProviderStatus:
        until = self.unavailable_until
        if until is not None:
            return ProviderStatus(
                available=True,
                warning=True,
                detail=f"Gemini per-day quota exhausted until {until.isoformat()} (midnight Pacific time)",
            )
        try:
            response = self._session.get(f"{self._base_url}/v1beta/models", timeout=self._status_timeout)
        except requests.Timeout:
            return ProviderStatus(available=False, detail=f"Gemini did not answer within {self._status_timeout:g} s")
        except requests.RequestException as error:
            return ProviderStatus(available=False, detail=f"Gemini unreachable ({type(error).__name__})")
        if response.status_code == 200:
            return ProviderStatus(available=True, detail=f"Gemini reachable (model {self.model_name})")
        if response.status_code == 429:
            return ProviderStatus(available=True, warning=True, detail="Gemini is rate limiting (HTTP 429)")
        if self._is_key_refused(response):
            return ProviderStatus(available=False, detail=f"Gemini refused the API key (HTTP {response.status_code})")
        return ProviderStatus(available=False, detail=f"Gemini answered HTTP {response.status_code}")

    def close(self) -> None:
        self._session.close()

    # -- one HTTP attempt -----------------------------------------------------------
    def _payload(self, request: SignalRequest) -> dict[str, Any]:
        return {
            "systemInstruction": {"parts": [{"text": SYSTEM_INSTRUCTION}]},
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": {
                "temperature": self._temperature,
                "candidateCount": 1,
                "responseMimeType": "application/json",
                "responseSchema": RESPONSE_SCHEMA,
            },
        }

    def _generate_once(self, request: SignalRequest) -> dict[str, Any]:
        url = f"{self._base_url}/v1beta/models/{self.model_name}:generateContent"
        try:
            response = self._session.post(url, json=self._payload(request), timeout=self._timeout)
        except requests.Timeout:
            raise TransientProviderError(f"Gemini did not answer within {self._timeout:g} s") from None
        except requests.RequestException as error:
            raise TransientProviderError(f"Gemini unreachable ({type(error).__name__})") from None
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                raise InvalidProviderResponseError("Gemini answered HTTP 200 with a body that is not JSON") from None
            if not isinstance(body, dict):
                raise InvalidProviderResponseError("Gemini answered HTTP 200 with a JSON body that is not an object")
            return body
        if status == 429:
            raise self._quota_error(response)
        if status >= 500:
            raise TransientProviderError(f"Gemini server error (HTTP {status}): {self._error_message(response)}")
        if self._is_key_refused(response):
            raise SignalProviderError(f"Gemini refused the API key (HTTP {status})")
        raise SignalProviderError(f"Gemini refused the request (HTTP {status}): {self._error_message(response)}")

    # -- error bodies ---------------------------------------------------------------
    def _error(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            return {}
        error = body.get("error") if isinstance(body, dict) else None
        return error if isinstance(error, dict) else {}

    def _safe(self, text: str) -> str:
        """Error text from the server, cut short and with the key masked should it ever be echoed."""
        return text.replace(self._api_key, "***")[:300]

    def _error_message(self, response: requests.Response) -> str:
        error = self._error(response)
        status = error.get("status") or ""
        message = error.get("message") or response.reason or ""
        return self._safe(f"{status} {message}".strip())

    def _is_key_refused(self, response: requests.Response) -> bool:
        if response.status_code in (401, 403):
            return True
        if response.status_code != 400:
            return False
        error = self._error(response)
        reasons = {detail.get("reason") for detail in error.get("details") or [] if isinstance(detail, dict)}
        return "API_KEY_INVALID" in reasons or "API key not valid" in str(error.get("message", ""))

    def _quota_error(self, response: requests.Response) -> QuotaExhaustedError:
        error = self._error(response)
        per_day = False
        retry_after = _parse_delay(response.headers.get("Retry-After"))
        quota_ids: list[str] = []
        for detail in error.get("details") or []:
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type", ""))
            if kind.endswith("google.rpc.QuotaFailure"):
                for violation in detail.get("violations") or []:
                    quota_id = str(violation.get("quotaId", "")) if isinstance(violation, dict) else ""
                    quota_ids.append(quota_id)
                    per_day = per_day or "PerDay" in quota_id
            elif kind.endswith("google.rpc.RetryInfo"):
                retry_after = _parse_delay(detail.get("retryDelay")) or retry_after
        scope = "per-day" if per_day else "per-minute"
        which = f" ({', '.join(quota_ids)})" if quota_ids else ""
        return QuotaExhaustedError(
            self._safe(f"Gemini {scope} quota exhausted{which}"),
            per_day=per_day,
            retry_after=None if per_day else retry_after,
        )

    # -- the answer -----------------------------------------------------------------
    @staticmethod
    def _count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    @staticmethod
    def _parse_answer(body: dict[str, Any]) -> tuple[str, Decimal, str]:
        try:
            candidate = body["candidates"][0]
            text = candidate["content"]["parts"][0]["text"]
        except (KeyError, IndexError, TypeError):
            reason = ""
            candidates = body.get("candidates")
            if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
                reason = f" (finishReason {candidates[0].get('finishReason')})"
            elif isinstance(body.get("promptFeedback"), dict):
                reason = f" (blockReason {body['promptFeedback'].get('blockReason')})"
            raise InvalidProviderResponseError(f"Gemini answer has no candidate text{reason}") from None
        if not isinstance(text, str):
            raise InvalidProviderResponseError("Gemini candidate text is not a string")
        stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
        try:
            answer = json.loads(stripped)
        except ValueError:
            raise InvalidProviderResponseError(f"Gemini answer is not JSON: {text[:80]!r}") from None
        if not isinstance(answer, dict):
            raise InvalidProviderResponseError("Gemini answer is JSON but not an object")
        signal = answer.get("signal")
        if signal not in SIGNALS:
            raise InvalidProviderResponseError(f"Gemini signal {str(signal)[:20]!r} is not one of BUY, SELL, HOLD")
        raw_confidence = answer.get("confidence")
        if isinstance(raw_confidence, bool) or not isinstance(raw_confidence, int | float | str):
            raise InvalidProviderResponseError("Gemini confidence is missing or not a number")
        try:
            confidence = Decimal(str(raw_confidence))
        except InvalidOperation:
            raise InvalidProviderResponseError(
                f"Gemini confidence {str(raw_confidence)[:20]!r} is not a number"
            ) from None
        if not confidence.is_finite() or not Decimal(0) <= confidence <= Decimal(1):
            raise InvalidProviderResponseError(f"Gemini confidence {confidence} is outside 0..1")
        reasoning = answer.get("reasoning")
        if not isinstance(reasoning, str) or not reasoning.strip():
            raise InvalidProviderResponseError("Gemini reasoning is missing or empty")
        return (
            signal,
            confidence.quantize(CONFIDENCE_PLACES, rounding=ROUND_HALF_UP),
            reasoning.strip()[:MAX_REASONING_CHARS],
        )
