"""The signal provider of the process: Gemini when ``GEMINI_API_KEY`` is set, else the rule-based one."""

from __future__ import annotations

from django.conf import settings

from trading.clients.ai.base import SignalProvider
from trading.clients.singleton import ProcessLocalSingleton


def _build() -> SignalProvider:
    if settings.GEMINI_API_KEY:
        from trading.clients.ai.gemini import GeminiSignalProvider

        return GeminiSignalProvider(
            api_key=settings.GEMINI_API_KEY,
            base_url=settings.GEMINI_API_URL,
            model=settings.GEMINI_MODEL,
            timeout=settings.GEMINI_TIMEOUT,
        )
    from trading.clients.ai.rule_based import RuleBasedSignalProvider

    return RuleBasedSignalProvider()


_singleton: ProcessLocalSingleton[SignalProvider] = ProcessLocalSingleton(_build)


def get_signal_provider() -> SignalProvider:
    """The process-wide provider (created on first use)."""
    return _singleton.get()


def reset_signal_provider() -> None:
    """Close and forget the instance (tests after changing settings; process shutdown)."""
    _singleton.reset()
