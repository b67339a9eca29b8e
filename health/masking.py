"""Masking of secrets and balances (seed 001 §3.4).

One place decides what must never reach a log line, a health message or an
exception text: balances, API keys and secrets, JWTs, ``Authorization``
headers, Slack webhook URLs and passwords inside URLs. ``mask_text`` and
``mask_value`` are used by the logging pipeline (``mask_event_processor`` runs
for structlog and stdlib records alike), by the health checks and by the AI
prompt debug log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Keys whose values are always masked (compared lower-case, "-" read as "_").
SENSITIVE_KEYS = frozenset(
    {
        # Balances (Upbit /v1/accounts and our Balance/OrderChance objects).
        "balance",
        "balances",
        "krw",
        "btc",
        "locked",
        "avg_buy_price",
        "bid_balance",
        "ask_balance",
        # Keys, secrets, tokens.
        "access_key",
        "secret_key",
        "api_key",
        "apikey",
        "x_goog_api_key",
        "upbit_access_key",
        "upbit_secret_key",
        "gemini_api_key",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "token",
        "access_token",
        "refresh_token",
        "jwt",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "webhook_url",
        "slack_webhook_url",
        "health_detail_token",
        "signature",
    }
)
_SENSITIVE_SUFFIXES = ("_secret", "_password", "_token", "_api_key", "_secret_key", "_access_key", "_balance")

# Names that, followed by ``:`` or ``=``, introduce a value to mask inside free text.
_TEXT_KEYS = (
    r"balance|locked|avg_buy_price|bid_balance|ask_balance|krw|btc|"
    r"access_key|secret_key|api_key|apikey|x-goog-api-key|secret|password|passwd|"
    r"token|access_token|refresh_token|webhook_url|slack_webhook_url|health_detail_token"
)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Slack incoming webhooks: the path is the credential.
    (re.compile(r"(https?://hooks\.slack\.com/services/)[^\s\"'<>]+", re.IGNORECASE), r"\1" + MASK),
    # Passwords inside URLs: scheme://user:pass@host -> scheme://user:***@host
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s/:@\"']*:)[^\s/@\"']+(@)", re.IGNORECASE), r"\1" + MASK + r"\2"),
    # Authorization headers and bearer tokens.
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), r"\1" + MASK),
    (re.compile(r"(\bBasic\s+)[A-Za-z0-9+/]+=*"), r"\1" + MASK),
    (
        re.compile(r"(['\"]?authorization['\"]?\s*[:=]\s*['\"]?)(?!Bearer\b|Basic\b|\*\*\*)[^\s'\",}]+", re.IGNORECASE),
        r"\1" + MASK,
    ),
    # JWTs: three base64url parts, the first a JSON header ("eyJ" = '{"').
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), MASK),
    # Google API keys, and any ``key=`` query parameter (Gemini's URL form).
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), MASK),
    (
        re.compile(r"([?&;](?:key|api_key|apikey|token|access_token|signature|sig)=)[^&#\s\"']+", re.IGNORECASE),
        r"\1" + MASK,
    ),
    # key: value / key=value / "key": "value" for the sensitive names.
    (
        re.compile(
            r"((?<![A-Za-z0-9_])['\"]?(?:" + _TEXT_KEYS + r")['\"]?\s*[:=]\s*)(['\"]?)(?!\*\*\*)([^\s'\",}\]&)]+)\2",
            re.IGNORECASE,
        ),
        r"\1\2" + MASK + r"\2",
    ),
]

_MIN_LITERAL_SECRET_LENGTH = 8


def _configured_secrets() -> list[str]:
    """The secret values this deployment is configured with: masked wherever they appear verbatim."""
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        candidates = [
            getattr(settings, "SECRET_KEY", ""),
            getattr(settings, "UPBIT_ACCESS_KEY", ""),
            getattr(settings, "UPBIT_SECRET_KEY", ""),
            getattr(settings, "GEMINI_API_KEY", ""),
            getattr(settings, "SLACK_WEBHOOK_URL", ""),
            getattr(settings, "HEALTH_DETAIL_TOKEN", ""),
            str(settings.DATABASES.get("default", {}).get("PASSWORD") or ""),
        ]
    except Exception:  # masking must never break logging
        return []
    return sorted(
        {value for value in candidates if isinstance(value, str) and len(value) >= _MIN_LITERAL_SECRET_LENGTH},
        key=len,
        reverse=True,
    )


def mask_text(text: str) -> str:
    """``text`` with every secret, token, credential and balance replaced by ``***``."""
    if not text:
        return text
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    normalized = key.strip().lower().replace("-", "_")
    return normalized in SENSITIVE_KEYS or normalized.endswith(_SENSITIVE_SUFFIXES)


def mask_value(value: Any, *, _depth: int = 0) -> Any:
    """A copy of ``value`` safe to log: sensitive keys masked, strings scrubbed, recursively."""
    if _depth > 20:
        return MASK
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bytes):
        return mask_text(value.decode("utf-8", errors="replace"))
    if isinstance(value, Mapping):
        return {
            key: (MASK if is_sensitive_key(key) else mask_value(item, _depth=_depth + 1)) for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [mask_value(item, _depth=_depth + 1) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return mask_value(
            {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}, _depth=_depth + 1
        )
    # Anything else (Decimal, datetime, exceptions, requests) is rendered as text, then scrubbed.
    return mask_text(str(value))


# Event-dict keys that carry structlog/stdlib plumbing, not data.
_PASSTHROUGH_KEYS = frozenset({"_record", "_from_structlog", "exc_info"})


def mask_event_processor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask every key/value, the message and the formatted exception."""
    for key in list(event_dict):
        if key in _PASSTHROUGH_KEYS:
            continue
        if is_sensitive_key(key):
            event_dict[key] = MASK
        else:
            event_dict[key] = mask_value(event_dict[key])
    return event_dict
