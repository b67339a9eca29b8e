"""Operator switch for trading: enable (and resume) or disable, through the config service.

Writing through ``trading.services.config.set_value`` keeps every process's
config cache coherent; nothing here touches ``SystemConfig`` directly.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.db import transaction

from trading.selectors import trading_state
from trading.services import config as config_service

logger = structlog.get_logger(__name__)


def enable_trading(*, actor: str = "") -> dict[str, Any]:
    """Turn the master switch on and lift any pause (an operator's explicit resume)."""
    with transaction.atomic():
        config_service.set_value("trading_enabled", True)
        config_service.set_value("trading_paused", False)
        config_service.set_value("trading_pause_reason", "")
    logger.info("trading_enabled", actor=actor)
    return trading_state()


def disable_trading(*, reason: str = "", actor: str = "") -> dict[str, Any]:
    """Turn the master switch off; ``reason`` is kept for the dashboard."""
    with transaction.atomic():
        config_service.set_value("trading_enabled", False)
        if reason:
            config_service.set_value("trading_pause_reason", reason)
    logger.info("trading_disabled", actor=actor, reason=reason)
    return trading_state()
