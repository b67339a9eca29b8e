"""Signal receivers: plumbing only (cache invalidation and the like)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from trading.models import SystemConfig


@receiver(post_save, sender=SystemConfig, dispatch_uid="trading.config_saved")
def config_saved(sender: type[SystemConfig], instance: SystemConfig, **kwargs: Any) -> None:
    """Admin edits, service writes and shell saves all reach every process's config cache."""
    from trading.services import config

    config.on_config_row_changed(f"saved:{instance.key}")


@receiver(post_delete, sender=SystemConfig, dispatch_uid="trading.config_deleted")
def config_deleted(sender: type[SystemConfig], instance: SystemConfig, **kwargs: Any) -> None:
    from trading.services import config

    config.on_config_row_changed(f"deleted:{instance.key}")


@receiver(post_migrate, dispatch_uid="trading.config_after_migrate")
def config_after_migrate(sender: Any, **kwargs: Any) -> None:
    """Data migrations write through historical models (no post_save): publish a change anyway."""
    if getattr(sender, "name", None) != "trading":
        return
    from trading.services import config

    config.publish_after_migrate()
