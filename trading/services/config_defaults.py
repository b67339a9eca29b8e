"""Create the default SystemConfig rows the trading logic needs (idempotent)."""

from __future__ import annotations

from typing import Any

from trading.config_schema import DEFINITIONS, to_text


def ensure_default_config(model: Any = None) -> list[str]:
    """Insert every missing key with its default; never touch an existing value.

    ``model`` lets a data migration pass its historical model. Returns the keys created.
    """
    if model is None:
        from trading.models import SystemConfig as model
    existing = set(model.objects.values_list("key", flat=True))
    missing = [
        model(
            key=definition.key,
            value=to_text(definition.default),
            value_type=definition.value_type,
            description=definition.description,
        )
        for key, definition in DEFINITIONS.items()
        if key not in existing
    ]
    model.objects.bulk_create(missing, ignore_conflicts=True)
    return [row.key for row in missing]
