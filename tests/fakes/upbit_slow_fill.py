"""``SlowFillUpbit``: the fake Upbit whose market orders rest in ``wait`` until released.

Why: the real Upbit can leave a market order open for a moment, and order
execution polls it. The crash test (kill during polling), the poll-timeout
tests and the connection-hold benchmark need an order that stays ``wait``
and fills later. Everything else is ``FakeUpbit``.

Fill control:

* ``fill_after_s = N``: a market order fills on the first lookup at least N
  seconds (real monotonic time) after it was placed;
* ``hold_fills = True``: market orders stay ``wait`` until ``release_fills()``
  (tests drive it from an injected ``sleep``);
* over HTTP (fake in another process): ``POST /_fake/hold_fills {"hold": true}``,
  ``POST /_fake/release_fills``, ``POST /_fake/fill_after {"seconds": 5}``.
"""

from __future__ import annotations

import sys
import threading
import time
from decimal import Decimal
from typing import Any

from tests.fakes.http import RecordedRequest, Response
from tests.fakes.upbit import FakeUpbit


class SlowFillUpbit(FakeUpbit):
    def __init__(self, *, fill_after_s: float = 0.0, hold_fills: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill_after_s = fill_after_s
        self.hold_fills = hold_fills
        self._due: dict[str, float] = {}  # uuid -> monotonic time from which the order may fill

    def _fill(self, order: dict[str, Any], current: Decimal) -> None:
        deferring = self.hold_fills or self.fill_after_s > 0
        if order["uuid"] in self._due or not deferring:
            self._due.pop(order["uuid"], None)
            super()._fill(order, current)
            return
        self._due[order["uuid"]] = time.monotonic() + self.fill_after_s  # stays "wait"

    def _settle_due(self) -> None:
        with self._state_lock:
            if self.hold_fills:
                return
            now = time.monotonic()
            for uuid, due in list(self._due.items()):
                order = self.orders.get(uuid)
                if order is not None and now >= due and order["state"] == "wait":
                    super()._fill(order, self.price)
                    self._due.pop(uuid, None)

    def release_fills(self) -> None:
        """Let every held market order fill (at the current price) on its next lookup."""
        with self._state_lock:
            self.hold_fills = False
            for uuid in self._due:
                self._due[uuid] = 0.0

    def open_market_orders(self) -> int:
        with self._state_lock:
            return len(self._due)

    def handle(self, request: RecordedRequest) -> Response:
        if request.path.startswith(("/v1/order", "/v1/accounts")) and request.method == "GET":
            self._settle_due()
        return super().handle(request)

    def _control(self, request: RecordedRequest) -> Response:
        command = request.path[len("/_fake/") :]
        payload = (request.json() or {}) if request.method == "POST" else {}
        if command == "hold_fills":
            with self._state_lock:
                self.hold_fills = bool(payload.get("hold", True))
            return Response(200, {"hold_fills": self.hold_fills})
        if command == "release_fills":
            self.release_fills()
            return Response(200, {"ok": True})
        if command == "fill_after":
            with self._state_lock:
                self.fill_after_s = float(payload.get("seconds", 0))
            return Response(200, {"fill_after_s": self.fill_after_s})
        return super()._control(request)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - standalone use
    import argparse

    parser = argparse.ArgumentParser(description="Run the slow-fill fake Upbit API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fill-after", type=float, default=5.0)
    arguments = parser.parse_args(argv)
    server = SlowFillUpbit(fill_after_s=arguments.fill_after, rate_limits=None, port=arguments.port)
    server.start()
    print(f"FAKE_UPBIT_URL={server.url}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
