"""``manage.py ensure_schedules``: create/update the five django-q2 Schedules (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create or update the job Schedules by name; keeps a pause (Repeats = 0) set in admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--signal-now", action="store_true", help="Make the first generate_trading_signal run due at once."
        )

    def handle(self, *args: Any, signal_now: bool = False, **options: Any) -> None:
        from trading.services.scheduling import ensure_schedules

        actions = ensure_schedules(signal_now=signal_now)
        for name, action in actions.items():
            self.stdout.write(f"{name}: {action}")
