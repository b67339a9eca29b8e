"""A small threaded loopback HTTP server that the service fakes (Upbit, Gemini, Slack) build on.

Why: tests talk real HTTP to 127.0.0.1 instead of mocking ``requests``, so
timeouts, connection resets and wire formats are exercised for real.

Usage::

    class MyFake(LoopbackServer):
        def handle(self, request: RecordedRequest) -> Response:
            return Response(200, {"ok": True})

    with MyFake() as server:               # starts on 127.0.0.1, port 0 (a free port)
        requests.get(server.url + "/x", timeout=1)
        server.requests                    # every request received, in order
        server.add_fault(Fault.status(503), path="/x", times=2)  # the next 2 calls to /x fail
        server.add_fault(Fault.reset(), fraction=0.3, seed=7)    # 30 % of all calls, seeded

A plain function can be passed instead of subclassing:
``LoopbackServer(handler=lambda request: Response(204))``.

Fault kinds (``Fault``): ``status`` (answer with a given status/body/headers
instead of the real handler), ``reset`` (close the socket without an answer,
with an RST), ``hang`` (sleep ``seconds`` and then close without an answer),
``delay`` (run the real handler, so its side effects happen, then wait
``seconds`` before answering: "accepted but the client timed out").
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    query: str  # raw query string, still url-encoded
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default


@dataclass
class Response:
    """What a handler answers. ``body``: dict/list → JSON, str → text/plain, bytes as is."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.body is None:
            payload = b""
        elif isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode("utf-8")
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(self.body).encode("utf-8")
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        return payload, headers


@dataclass
class Fault:
    """A programmed failure (see the module docstring)."""

    kind: str  # "status" | "reset" | "hang" | "delay"
    response: Response | None = None
    seconds: float = 0.0

    @classmethod
    def status(cls, status: int, body: Any = None, headers: dict[str, str] | None = None) -> Fault:
        return cls("status", response=Response(status, body, dict(headers or {})))

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset")

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        return cls("hang", seconds=seconds)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)


@dataclass
class _FaultRule:
    fault: Fault | tuple[Fault, ...]
    path: str | None
    method: str | None
    remaining: int | None  # None: unlimited (with fraction)
    fraction: float | None
    rng: random.Random

    def matches(self, request: RecordedRequest) -> bool:
        if self.path is not None and request.path != self.path:
            return False
        return self.method is None or request.method == self.method.upper()


class LoopbackServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread; override ``handle``."""

    def __init__(self, handler: Callable[[RecordedRequest], Response] | None = None, port: int = 0) -> None:
        self._handler = handler
        self._port = port
        self._lock = threading.Lock()
        self._rules: list[_FaultRule] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LoopbackServer:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections
            disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stalls

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _serve(self) -> None:
                owner._serve(self)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- programming ---------------------------------------------------------------
    def add_fault(
        self,
        fault: Fault | Sequence[Fault],
        *,
        path: str | None = None,
        method: str | None = None,
        times: int | None = 1,
        fraction: float | None = None,
        seed: int = 0,
    ) -> None:
        """The next ``times`` matching calls fail; with ``fraction``, that share of calls (seeded) fails.

        ``fault`` may be a list: each failing call then gets one of them at random (same seeded generator).
        """
        if not isinstance(fault, Fault):
            fault = tuple(fault)
        if fraction is not None and times == 1:
            times = None
        with self._lock:
            self._rules.append(_FaultRule(fault, path, method, times, fraction, random.Random(seed)))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def calls(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                request
                for request in self.requests
                if (path is None or request.path == path) and (method is None or request.method == method.upper())
            ]

    def handle(self, request: RecordedRequest) -> Response:
        """Answer one request; subclasses override this (or pass ``handler``)."""
        if self._handler is None:
            return Response(404, {"error": "no handler"})
        return self._handler(request)

    # -- internals -----------------------------------------------------------------
    def _pick_fault(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(request):
                    continue
                if rule.remaining is not None and rule.remaining <= 0:
                    continue
                if rule.fraction is not None and rule.rng.random() >= rule.fraction:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                if isinstance(rule.fault, tuple):
                    return rule.rng.choice(rule.fault)
                return rule.fault
        return None

    def _serve(self, http_handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(http_handler.path)
        length = int(http_handler.headers.get("Content-Length") or 0)
        body = http_handler.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=http_handler.command,
            path=split.path,
            query=split.query,
            headers=dict(http_handler.headers.items()),
            body=body,
        )
        with self._lock:
            self.requests.append(request)
        fault = self._pick_fault(request)
        if fault is not None and fault.kind == "reset":
            self._reset(http_handler)
            return
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            self._reset(http_handler)
            return
        if fault is not None and fault.kind == "status":
            assert fault.response is not None
            response = fault.response
        else:
            try:
                response = self.handle(request)
            except Exception as error:  # a bug in a fake must be visible, not a hang
                response = Response(599, {"error": {"name": "fake_crashed", "message": repr(error)}})
        if fault is not None and fault.kind == "delay":
            self._stopping.wait(fault.seconds)
        self._send(http_handler, response)

    @staticmethod
    def _send(http_handler: BaseHTTPRequestHandler, response: Response) -> None:
        payload, headers = response.encoded()
        try:
            http_handler.send_response(response.status)
            for name, value in headers.items():
                http_handler.send_header(name, value)
            http_handler.send_header("Content-Length", str(len(payload)))
            http_handler.end_headers()
            http_handler.wfile.write(payload)
            http_handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            http_handler.close_connection = True

    @staticmethod
    def _reset(http_handler: BaseHTTPRequestHandler) -> None:
        """Close the socket with an RST and no answer at all."""
        connection = http_handler.connection
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        http_handler.close_connection = True
        with contextlib.suppress(OSError):
            connection.close()
