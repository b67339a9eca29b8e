"""Subprocess for the SIGKILL test: execute one signal and kill this very process at a crash point.

Usage (from the repository root, with the test's environment)::

    python -m tests.trading.crash_worker <signal_id> <crash_point>

``crash_point`` is one of ``order_execution``'s crash points (``after_tx1``,
``after_place``, ``during_poll``, ``before_tx3``). The hook SIGKILLs the
process — no cleanup, no atexit, no rollback: exactly what a power cut or the
OOM killer does. Exit code 0 means the crash point was never reached.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    signal_id, crash_at = int(argv[0]), argv[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from trading.models import TradingSignal
    from trading.services import order_execution

    def crash(name: str) -> None:
        if name == crash_at:
            sys.stdout.write(f"crashing at {name}\n")
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    order_execution.crash_hook = crash
    order = order_execution.execute_signal(TradingSignal.objects.get(pk=signal_id))
    sys.stdout.write(f"finished without crashing: {order}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
