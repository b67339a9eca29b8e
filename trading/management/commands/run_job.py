"""``manage.py run_job <name>``: one run of a job in the foreground (operators, tests)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run one job once in the foreground; exits non-zero when it fails or is already running."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="collect_market_data, check_volatility, generate_trading_signal, ...")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        from trading.jobs import JOB_FUNCTIONS, run_once

        if name not in JOB_FUNCTIONS:
            raise CommandError(f"Unknown job {name!r}. Valid jobs: {', '.join(JOB_FUNCTIONS)}.")
        result = run_once(name)
        if result.skipped:
            raise CommandError(f"Job {name} is already running elsewhere (its run lock is held); nothing was done.")
        if not result.success:
            raise CommandError(f"Job {name} failed after {result.duration_ms} ms: {result.error}")
        self.stdout.write(f"Job {name} succeeded in {result.duration_ms} ms: {result.value!r}")
