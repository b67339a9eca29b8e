"""The signal-provider interface (Gemini or the rule-based provider)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class PricePoint:
    timestamp: datetime
    price: Decimal


@dataclass(frozen=True)
class SignalRequest:
    """What a provider gets: the compact prompt (for an LLM) and the samples it was built from."""

    market: str
    prompt: str
    samples: list[PricePoint]  # oldest first, ~450 points
    current_price: Decimal
    position_quantity: Decimal = Decimal("0")
    average_buy_price: Decimal = Decimal("0")
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SignalResult:
    signal_type: str  # "BUY" | "SELL" | "HOLD"
    confidence: Decimal  # 0..1
    reasoning: str
    provider: str
    model_name: str
    input_tokens: int
    output_tokens: int
    latency_ms: int


@dataclass(frozen=True)
class ProviderStatus:
    available: bool
    detail: str  # safe for a health message: no keys, no URLs with credentials
    warning: bool = False


class SignalProviderError(Exception):
    retryable = False


class TransientProviderError(SignalProviderError):
    retryable = True


class QuotaExhaustedError(SignalProviderError):
    """429 RESOURCE_EXHAUSTED. Per-minute quotas are retryable after ``retry_after``; per-day are not."""

    def __init__(self, message: str, *, per_day: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.per_day = per_day
        self.retry_after = retry_after
        self.retryable = not per_day


class InvalidProviderResponseError(SignalProviderError):
    """Malformed or out-of-schema answer: becomes a HOLD, never an order."""


class ProviderUnavailableError(SignalProviderError):
    """The provider has declared itself unavailable (e.g. per-day quota until reset)."""


class SignalProvider(ABC):
    name: str = "provider"
    model_name: str = ""
    # An LLM is told the prompt's confidence formula and its answer is re-checked
    # against it; a provider with its own documented formula (rule-based) is not.
    follows_prompt_confidence_formula: bool = True

    @abstractmethod
    def generate(self, request: SignalRequest) -> SignalResult: ...

    @abstractmethod
    def status(self) -> ProviderStatus:
        """A cheap check for /health/detail (e.g. the models list)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
