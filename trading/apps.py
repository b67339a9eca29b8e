from django.apps import AppConfig


class TradingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from config.db_pool import install_fork_guard, install_pool_recovery

        install_fork_guard()
        install_pool_recovery()
        from trading import signals  # noqa: F401  (cache invalidation plumbing)
