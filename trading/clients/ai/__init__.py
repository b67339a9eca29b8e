"""The signal provider of the process: Gemini when ``GEMINI_API_KEY`` is set, else the rule-based one."""

from __future__ import annotations

import os
import threading

from django.conf import settings

from trading.clients.ai.base import SignalProvider

_lock = threading.Lock()
_owner_pid = 0  # a forked child must not use its parent's HTTP session
_instance: SignalProvider | None = None


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


def get_signal_provider() -> SignalProvider:
    """The process-wide provider (created on first use)."""
    global _instance, _owner_pid
    if _instance is None or _owner_pid != os.getpid():
        with _lock:
            if _instance is None or _owner_pid != os.getpid():
                _instance, _owner_pid = _build(), os.getpid()
    return _instance


def reset_signal_provider() -> None:
    """Close and forget the instance (tests after changing settings; process shutdown)."""
    global _instance
    with _lock:
        instance, _instance = _instance, None
        inherited = _owner_pid != os.getpid()
    if instance is not None and not inherited:
        instance.close()
