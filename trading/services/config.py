"""Config service in front of SystemConfig.

INTERIM VERSION (foundation): reads the database directly. The config-cache
issue replaces the internals with Django's cache framework; the public
functions below are the contract and keep their signatures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trading.config_schema import get_definition


def get_value(key: str) -> Any:
    """The typed value of ``key`` (its schema default when no row exists)."""
    from trading.models import SystemConfig

    definition = get_definition(key)
    row = SystemConfig.objects.filter(key=key).only("value").first()
    return definition.default if row is None else definition.parse(row.value)


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    return {key: get_value(key) for key in keys}


def set_value(key: str, value: Any, *, description: str | None = None) -> Any:
    """Validate and store ``value``; raises ``django.core.exceptions.ValidationError``."""
    from trading.models import SystemConfig

    definition = get_definition(key)
    text = definition.serialize(value)
    row = SystemConfig.objects.filter(key=key).first() or SystemConfig(key=key)
    row.value = text
    if description is not None:
        row.description = description
    row.save()
    return definition.parse(text)
