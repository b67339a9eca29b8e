from django.apps import AppConfig


class PaperExchangeConfig(AppConfig):
    """The offline exchange simulator's own books (balances and orders)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "paper_exchange"
    verbose_name = "Paper exchange"
