"""``manage.py latency_report LOGFILE [--json]``: p50/p95/p99 per endpoint and per job from JSON logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from health.latency import summarize


class Command(BaseCommand):
    help = "Latency percentiles (p50/p95/p99) per API endpoint and per job from a JSON-lines log file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("logfile", help="JSON-lines log file (non-JSON lines are ignored)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["logfile"])
        if not path.is_file():
            raise CommandError(f"log file not found: {path}")
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                summaries, skipped = summarize(handle)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None

        if options["json"]:
            payload = {"summaries": [summary.as_dict() for summary in summaries], "skipped_lines": skipped}
            self.stdout.write(json.dumps(payload, indent=2))
            return
        if not summaries:
            self.stdout.write(f"no api_request or job metric events in {path} ({skipped} non-JSON lines skipped)")
            return
        header = f"{'kind':<9} {'name':<48} {'count':>7} {'fail':>5} {'p50 ms':>10} {'p95 ms':>10} {'p99 ms':>10}"
        self.stdout.write(header)
        for summary in summaries:
            self.stdout.write(
                f"{summary.kind:<9} {summary.name:<48} {summary.count:>7} {summary.failures:>5} "
                f"{summary.p50_ms:>10.1f} {summary.p95_ms:>10.1f} {summary.p99_ms:>10.1f}"
            )
        if skipped:
            self.stdout.write(f"({skipped} non-JSON lines skipped)")
