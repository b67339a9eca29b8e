"""The typed settings operators edit in ``SystemConfig``.

Each key has a type, bounds and a default. Values are stored as text in their
canonical form and parsed back into Python values (``bool``, ``int``,
``Decimal``, ``str``). Unknown keys are rejected: a typo in admin must not
silently create a setting nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

BOOL = "bool"
INT = "int"
DECIMAL = "decimal"
STR = "str"
VALUE_TYPES = (BOOL, INT, DECIMAL, STR)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class ConfigDefinition:
    key: str
    value_type: str
    default: Any
    description: str
    minimum: Any = None
    maximum: Any = None
    max_length: int = 500

    def parse(self, raw: Any) -> Any:
        """Turn a raw value (text or Python) into the typed value, or raise ValidationError."""
        value = _coerce(self.value_type, raw, self.key)
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(f"{self.key} must be at least {self.minimum}.", code="min_value")
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(f"{self.key} must be at most {self.maximum}.", code="max_value")
        if self.value_type == STR and len(value) > self.max_length:
            raise ValidationError(f"{self.key} must be at most {self.max_length} characters.", code="max_length")
        return value

    def serialize(self, raw: Any) -> str:
        """Validate and return the canonical text stored in the database."""
        return to_text(self.parse(raw))


def _coerce(value_type: str, raw: Any, key: str) -> Any:
    if value_type == BOOL:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValidationError(f"{key} must be true or false.", code="invalid_bool")
    if value_type == INT:
        if isinstance(raw, bool):
            raise ValidationError(f"{key} must be a whole number.", code="invalid_int")
        try:
            text = str(raw).strip()
            number = Decimal(text)
            if not number.is_finite() or number != number.to_integral_value():
                raise InvalidOperation
            return int(number)
        except (InvalidOperation, ValueError):
            raise ValidationError(f"{key} must be a whole number.", code="invalid_int") from None
    if value_type == DECIMAL:
        if isinstance(raw, (bool, float)):
            # floats are refused so that money never passes through binary floating point
            raise ValidationError(f"{key} must be given as a decimal string or integer.", code="invalid_decimal")
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValidationError(f"{key} must be a number.", code="invalid_decimal") from None
        if not number.is_finite():
            raise ValidationError(f"{key} must be a finite number.", code="invalid_decimal")
        return number
    if value_type == STR:
        return str(raw).strip()
    raise ValidationError(f"Unknown value type {value_type!r}.", code="invalid_type")


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(value)


D = Decimal

DEFINITIONS: dict[str, ConfigDefinition] = {
    definition.key: definition
    for definition in [
        ConfigDefinition("trading_enabled", BOOL, True, "Master switch: when false no order is placed."),
        ConfigDefinition(
            "trading_paused", BOOL, False, "Set by the volatility guard (or an operator) to pause trading."
        ),
        ConfigDefinition(
            "trading_pause_reason", STR, "", "Why trading is paused (shown on the dashboard).", max_length=300
        ),
        ConfigDefinition(
            "volatility_auto_resume",
            BOOL,
            False,
            "Resume trading automatically when volatility falls back under the threshold.",
        ),
        ConfigDefinition(
            "stop_loss_pct", DECIMAL, D("5"), "Close the position when it loses this percent.", D("0.1"), D("50")
        ),
        ConfigDefinition(
            "take_profit_pct", DECIMAL, D("10"), "Close the position when it gains this percent.", D("0.1"), D("500")
        ),
        ConfigDefinition(
            "max_position_krw", DECIMAL, D("1000000"), "Largest position value in KRW.", D("5000"), D("10000000000")
        ),
        ConfigDefinition(
            "order_amount_krw", DECIMAL, D("100000"), "KRW spent by one BUY order.", D("5000"), D("1000000000")
        ),
        ConfigDefinition(
            "min_confidence", DECIMAL, D("0.6"), "Signals below this confidence are not traded.", D("0"), D("1")
        ),
        ConfigDefinition(
            "volatility_threshold_pct",
            DECIMAL,
            D("3"),
            "Pause trading when the price range over the window exceeds this percent.",
            D("0.1"),
            D("100"),
        ),
        ConfigDefinition("volatility_window_minutes", INT, 10, "Window over which volatility is measured.", 1, 1440),
        ConfigDefinition(
            "market_data_retention_days", INT, 30, "Market data older than this is deleted daily.", 1, 3650
        ),
        ConfigDefinition(
            "order_poll_timeout_s", INT, 30, "How long an order is polled before sync takes over.", 1, 600
        ),
        ConfigDefinition("signal_interval_minutes", INT, 30, "Minutes between AI signals.", 1, 1440),
        ConfigDefinition(
            "paper_starting_krw",
            DECIMAL,
            D("10000000"),
            "KRW balance of a new paper account.",
            D("0"),
            D("1000000000000"),
        ),
        ConfigDefinition(
            "ai_input_cost_krw_per_1k_tokens",
            DECIMAL,
            D("0.42"),
            "Estimated AI cost per 1,000 input tokens (KRW).",
            D("0"),
            D("1000"),
        ),
        ConfigDefinition(
            "ai_output_cost_krw_per_1k_tokens",
            DECIMAL,
            D("3.5"),
            "Estimated AI cost per 1,000 output tokens (KRW).",
            D("0"),
            D("1000"),
        ),
        ConfigDefinition(
            "cache_hit_rate_alert_pct",
            DECIMAL,
            D("80"),
            "Log a warning when a cache's hit rate falls below this percent.",
            D("0"),
            D("100"),
        ),
    ]
}


def get_definition(key: str) -> ConfigDefinition:
    try:
        return DEFINITIONS[key]
    except KeyError:
        raise ValidationError(f"Unknown configuration key {key!r}.", code="unknown_key") from None
