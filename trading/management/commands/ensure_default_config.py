from django.core.management.base import BaseCommand

from trading.services.config_defaults import ensure_default_config


class Command(BaseCommand):
    help = "Create any missing default SystemConfig rows (existing values are left alone)."

    def handle(self, *args, **options) -> None:
        created = ensure_default_config()
        self.stdout.write(f"created {len(created)} config rows" + (f": {', '.join(created)}" if created else ""))
