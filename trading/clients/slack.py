"""Slack incoming-webhook notifications (fills, failures, pauses).

``notify`` never raises: a notification must not break the trading flow. The
webhook URL is a secret (it grants posting rights), so it is never logged.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

MAX_FIELD_LENGTH = 200


class _WebhookPathFilter(logging.Filter):
    """urllib3 logs request lines (``"POST /services/T…/B…/secret HTTP/1.1" 200``) at DEBUG: mask the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            path = urlsplit(getattr(settings, "SLACK_WEBHOOK_URL", "") or "").path
            if len(path) > 1:
                message = record.getMessage()
                if path in message:
                    record.msg, record.args = message.replace(path, "/***"), ()
        except Exception:  # noqa: S110 - a logging filter must never break logging
            pass
        return True


_urllib3_logger = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(existing, _WebhookPathFilter) for existing in _urllib3_logger.filters):
    _urllib3_logger.addFilter(_WebhookPathFilter())


def _render_value(value: Any) -> str:
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= MAX_FIELD_LENGTH else text[: MAX_FIELD_LENGTH - 1] + "…"


def render(text: str, **fields: Any) -> str:
    """``text`` followed by ``key=value`` pairs on one line, e.g. ``Order filled | side=bid volume=0.001``."""
    if not fields:
        return text
    pairs = " ".join(f"{key}={_render_value(value)}" for key, value in fields.items())
    return f"{text} | {pairs}"


def notify(text: str, **fields: Any) -> bool:
    """Post to ``settings.SLACK_WEBHOOK_URL``; ``False`` when unset or when the post failed (logged)."""
    url = getattr(settings, "SLACK_WEBHOOK_URL", "") or ""
    if not url:
        return False
    message = render(text, **fields)
    try:
        response = requests.post(url, json={"text": message}, timeout=float(settings.SLACK_TIMEOUT))
    except requests.RequestException as error:
        logger.warning("slack_notify_failed", reason=type(error).__name__, text=text[:100])
        return False
    if response.status_code >= 300:
        logger.warning("slack_notify_failed", status=response.status_code, text=text[:100])
        return False
    return True
