"""A fake Upbit REST API: a real HTTP server on 127.0.0.1 speaking Upbit's wire format.

What it checks like Upbit does: the JWT signature (HS256, test secret), the
``access_key``, nonce reuse (401 ``nonce_used``) and ``query_hash`` recomputed
from the received query string or JSON body (401 ``invalid_query_payload``);
per-group per-second limits with ``Remaining-Req`` headers (429 when exceeded;
with ``ban_after_429s=N``, a 418 ban after more than N 429s in a row).

What it serves: ticker, minute candles, accounts, order chance, orders (an
in-memory book: market orders fill at once at the current price with a 0.05 %
fee, limit orders stay ``wait``; an ``identifier`` can never be used twice),
get order by uuid/identifier (with ``trades``), open orders, cancel.

In-process (tests)::

    with FakeUpbit() as upbit:                       # or the ``fake_upbit`` fixture
        client = UpbitExchange(TEST_ACCESS_KEY, TEST_SECRET_KEY, upbit.url)
        upbit.set_price(Decimal("101000000"))
        upbit.add_fault(Fault.status(503), path="/v1/ticker", times=2)
        upbit.add_fault(Fault.delay(3), path="/v1/orders", method="POST")  # accepted, answer too late
        upbit.calls("/v1/orders", "POST")            # recorded requests

Standalone (another process, e.g. crash tests)::

    python -m tests.fakes.upbit --port 0            # prints "FAKE_UPBIT_URL=http://127.0.0.1:NNNNN"

and control it over HTTP (no auth)::

    POST /_fake/price   {"price": "101000000"}
    POST /_fake/fault   {"kind": "status"|"reset"|"hang"|"delay", "path": "/v1/orders", "method": "POST",
                         "times": 1, "fraction": null, "seed": 0, "status": 500, "body": ..., "headers": {},
                         "seconds": 3}
    POST /_fake/clear_faults
    GET  /_fake/orders  → every stored order;  GET /_fake/requests → [{method, path, query}]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
import uuid as uuid_module
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import jwt

from tests.fakes.http import Fault, LoopbackServer, RecordedRequest, Response

TEST_ACCESS_KEY = "fake-upbit-access-key-0123456789"
TEST_SECRET_KEY = "fake-upbit-secret-key-9876543210"
KST = timezone(timedelta(hours=9))
FEE_RATE = Decimal("0.0005")
MIN_TOTAL = Decimal("5000")
DEFAULT_LIMITS = {"quotation": 10, "default": 30, "order": 8}


def error_body(name: str, message: str) -> dict[str, Any]:
    return {"error": {"name": name, "message": message}}


def _group(method: str, path: str) -> str:
    if path.startswith(("/v1/ticker", "/v1/candles")):
        return "quotation"
    if (method == "POST" and path == "/v1/orders") or (method == "DELETE" and path == "/v1/order"):
        return "order"
    return "default"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


class FakeUpbit(LoopbackServer):
    """The fake; see the module docstring."""

    def __init__(
        self,
        *,
        access_key: str = TEST_ACCESS_KEY,
        secret_key: str = TEST_SECRET_KEY,
        price: Decimal = Decimal("100000000"),
        krw_balance: Decimal = Decimal("1000000"),
        btc_balance: Decimal = Decimal("0.01"),
        rate_limits: dict[str, int] | None = DEFAULT_LIMITS,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        ban_after_429s: int | None = None,
        ban_seconds: int = 60,
    ) -> None:
        super().__init__(port=port)
        self.clock = clock  # the rate-limit windows' clock (tests share a fake clock with the client)
        self.access_key = access_key
        self.secret_key = secret_key
        self.price = Decimal(price)
        self.balances: dict[str, dict[str, Decimal]] = {
            "KRW": {"balance": Decimal(krw_balance), "locked": Decimal("0"), "avg_buy_price": Decimal("0")},
            "BTC": {"balance": Decimal(btc_balance), "locked": Decimal("0"), "avg_buy_price": Decimal("0")},
        }
        self.rate_limits = dict(rate_limits) if rate_limits else None
        self.orders: dict[str, dict[str, Any]] = {}
        self.identifiers: set[str] = set()
        self.rejected_429 = 0
        self.rejected_418 = 0
        # Upbit bans (418) a client that keeps calling after 429s: after ``ban_after_429s`` 429s in a
        # row in one group, every call of that group answers 418 for ``ban_seconds`` (by ``clock``).
        self.ban_after_429s = ban_after_429s
        self.ban_seconds = ban_seconds
        self._consecutive_429: dict[str, int] = defaultdict(int)
        self._banned_until: dict[str, float] = {}
        self.accepted_windows: list[tuple[str, int]] = []  # (group, second) of each request within limits
        self._state_lock = threading.RLock()
        self._nonces: set[str] = set()
        self._windows: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))  # group -> (second, count)

    # -- control -------------------------------------------------------------------------
    def set_price(self, price: Decimal | str | int) -> None:
        with self._state_lock:
            self.price = Decimal(str(price))

    def order_count(self) -> int:
        with self._state_lock:
            return len(self.orders)

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        if request.path.startswith("/_fake/"):
            return self._control(request)
        group = _group(request.method, request.path)
        limited = self._count_request(group)
        if limited is not None:
            return limited
        response = self._route(request, group)
        response.headers.setdefault("Remaining-Req", self._remaining_header(group))
        return response

    def _count_request(self, group: str) -> Response | None:
        if self.rate_limits is None:
            return None
        limit = self.rate_limits.get(group, self.rate_limits["default"])
        with self._state_lock:
            now = self.clock()
            if self._banned_until.get(group, 0) > now:
                self.rejected_418 += 1
                left = int(self._banned_until[group] - now) + 1
                return Response(
                    418,
                    error_body("too_many_requests", f"Too many API requests. Blocked for {left} seconds."),
                    {"Remaining-Req": f"group={group}; min=0; sec=0"},
                )
            second = int(now)
            window_second, count = self._windows[group]
            if window_second != second:
                count = 0
            if count >= limit:
                self.rejected_429 += 1
                self._consecutive_429[group] += 1
                if self.ban_after_429s is not None and self._consecutive_429[group] > self.ban_after_429s:
                    self._banned_until[group] = now + self.ban_seconds
                return Response(
                    429,
                    error_body("too_many_requests", "Too many API requests."),
                    {"Remaining-Req": f"group={group}; min=1800; sec=0"},
                )
            self._windows[group] = (second, count + 1)
            self._consecutive_429[group] = 0
            self.accepted_windows.append((group, second))
        return None

    def _remaining_header(self, group: str) -> str:
        if self.rate_limits is None:
            return f"group={group}; min=1800; sec=99"
        limit = self.rate_limits.get(group, self.rate_limits["default"])
        with self._state_lock:
            second, count = self._windows[group]
            left = limit - count if second == int(self.clock()) else limit
        return f"group={group}; min=1800; sec={max(left, 0)}"

    def _route(self, request: RecordedRequest, group: str) -> Response:
        method, path = request.method, request.path
        if method == "GET" and path == "/v1/ticker":
            return self._ticker(request)
        if method == "GET" and path.startswith("/v1/candles/minutes/"):
            return self._candles(request)
        private = {
            ("GET", "/v1/accounts"): self._accounts,
            ("GET", "/v1/orders/chance"): self._chance,
            ("POST", "/v1/orders"): self._place,
            ("GET", "/v1/order"): self._get_order,
            ("GET", "/v1/orders/open"): self._open_orders,
            ("DELETE", "/v1/order"): self._cancel,
        }.get((method, path))
        if private is None:
            return Response(404, error_body("not_found", f"{method} {path} does not exist"))
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        return private(request)

    # -- auth ----------------------------------------------------------------------------
    def _authenticate(self, request: RecordedRequest) -> Response | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Bearer "):
            return Response(401, error_body("no_authorization_token", "Authorization token is missing."))
        try:
            claims = jwt.decode(header[len("Bearer ") :], self.secret_key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return Response(401, error_body("jwt_verification", "Failed to verify the JWT."))
        if claims.get("access_key") != self.access_key:
            return Response(401, error_body("invalid_access_key", "Unknown access key."))
        nonce = claims.get("nonce")
        with self._state_lock:
            if not nonce or nonce in self._nonces:
                return Response(401, error_body("nonce_used", "The nonce has already been used."))
            self._nonces.add(nonce)
        if request.query:
            hashed = unquote(request.query)
        elif request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                return Response(400, error_body("invalid_parameter", "Body is not JSON."))
            hashed = unquote(urlencode(body, doseq=True))
        else:
            hashed = None
        if hashed is not None:
            expected = hashlib.sha512(hashed.encode("utf-8")).hexdigest()
            if claims.get("query_hash") != expected or claims.get("query_hash_alg", "SHA512") != "SHA512":
                return Response(401, error_body("invalid_query_payload", "query_hash does not match."))
        return None

    # -- quotation -----------------------------------------------------------------------
    def _ticker(self, request: RecordedRequest) -> Response:
        markets = (request.params.get("markets") or [""])[0].split(",")
        if markets != ["KRW-BTC"]:
            return Response(404, error_body("not_found", "Code not found"))
        with self._state_lock:
            price = self.price
        now_ms = int(time.time() * 1000)
        return Response(
            200,
            [
                {
                    "market": "KRW-BTC",
                    "trade_price": float(price),
                    "opening_price": float(price * Decimal("0.99")),
                    "high_price": float(price * Decimal("1.01")),
                    "low_price": float(price * Decimal("0.98")),
                    "acc_trade_volume_24h": 1234.56789012,
                    "signed_change_rate": 0.0101,
                    "timestamp": now_ms,
                }
            ],
        )

    def _candles(self, request: RecordedRequest) -> Response:
        try:
            unit = int(request.path.rsplit("/", 1)[1])
            count = int((request.params.get("count") or ["1"])[0])
        except ValueError:
            return Response(400, error_body("invalid_parameter", "bad unit or count"))
        if count > 200 or count < 1:
            return Response(400, error_body("invalid_parameter", "count must be 1..200"))
        raw_to = (request.params.get("to") or [None])[0]
        end = datetime.now(UTC)
        if raw_to:
            end = datetime.fromisoformat(raw_to.replace("Z", "+00:00"))
            end = end.replace(tzinfo=end.tzinfo or UTC).astimezone(UTC)
        step = timedelta(minutes=unit)
        start = end.replace(second=0, microsecond=0)
        start -= timedelta(minutes=start.minute % unit)
        if start >= end:
            start -= step  # ``to`` is exclusive
        with self._state_lock:
            price = self.price
        rows = []
        for index in range(count):
            moment = start - index * step
            wobble = Decimal((int(moment.timestamp()) // 60) % 7 - 3) * Decimal("10000")
            close = price + wobble
            rows.append(
                {
                    "market": "KRW-BTC",
                    "candle_date_time_utc": moment.strftime("%Y-%m-%dT%H:%M:%S"),
                    "candle_date_time_kst": moment.astimezone(KST).strftime("%Y-%m-%dT%H:%M:%S"),
                    "opening_price": float(close - 5000),
                    "high_price": float(close + 20000),
                    "low_price": float(close - 20000),
                    "trade_price": float(close),
                    "timestamp": int(moment.timestamp() * 1000) + 59000,
                    "candle_acc_trade_price": float(close * Decimal("1.5")),
                    "candle_acc_trade_volume": 1.5,
                    "unit": unit,
                }
            )
        return Response(200, rows)

    # -- account -------------------------------------------------------------------------
    def _accounts(self, request: RecordedRequest) -> Response:
        with self._state_lock:
            rows = [
                {
                    "currency": currency,
                    "balance": _text(values["balance"]),
                    "locked": _text(values["locked"]),
                    "avg_buy_price": _text(values["avg_buy_price"]),
                    "avg_buy_price_modified": False,
                    "unit_currency": "KRW",
                }
                for currency, values in self.balances.items()
            ]
        return Response(200, rows)

    def _chance(self, request: RecordedRequest) -> Response:
        market = (request.params.get("market") or [""])[0]
        if market != "KRW-BTC":
            return Response(404, error_body("market_does_not_exist", "Market does not exist."))
        with self._state_lock:
            krw, btc = dict(self.balances["KRW"]), dict(self.balances["BTC"])
        return Response(
            200,
            {
                "bid_fee": _text(FEE_RATE),
                "ask_fee": _text(FEE_RATE),
                "maker_bid_fee": _text(FEE_RATE),
                "maker_ask_fee": _text(FEE_RATE),
                "market": {
                    "id": "KRW-BTC",
                    "name": "BTC/KRW",
                    "order_types": ["limit"],
                    "order_sides": ["ask", "bid"],
                    "bid": {"currency": "KRW", "price_unit": None, "min_total": _text(MIN_TOTAL)},
                    "ask": {"currency": "BTC", "price_unit": None, "min_total": _text(MIN_TOTAL)},
                    "max_total": "1000000000",
                    "state": "active",
                },
                "bid_account": {"currency": "KRW", "balance": _text(krw["balance"]), "locked": _text(krw["locked"])},
                "ask_account": {"currency": "BTC", "balance": _text(btc["balance"]), "locked": _text(btc["locked"])},
            },
        )

    # -- orders --------------------------------------------------------------------------
    def _public_order(self, order: dict[str, Any], with_trades: bool) -> dict[str, Any]:
        row = {
            key: (_text(value) if isinstance(value, Decimal) else value)
            for key, value in order.items()
            if key != "trades"
        }
        if with_trades:
            row["trades"] = [{key: _text(value) for key, value in trade.items()} for trade in order["trades"]]
        return row

    def _place(self, request: RecordedRequest) -> Response:
        body = request.json() or {}
        market, side, ord_type = body.get("market"), body.get("side"), body.get("ord_type")
        identifier = body.get("identifier")
        try:
            price = Decimal(body["price"]) if body.get("price") is not None else None
            volume = Decimal(body["volume"]) if body.get("volume") is not None else None
        except ArithmeticError:
            return Response(400, error_body("invalid_parameter", "price/volume must be numbers"))
        if market != "KRW-BTC":
            return Response(404, error_body("market_does_not_exist", "Market does not exist."))
        shapes = {("bid", "price"): (True, False), ("ask", "market"): (False, True), ("bid", "limit"): (True, True)}
        shapes[("ask", "limit")] = (True, True)
        shape = shapes.get((side, ord_type))
        if shape is None or shape != (price is not None, volume is not None):
            return Response(400, error_body("invalid_parameter", "side/ord_type/price/volume do not fit"))
        with self._state_lock:
            if identifier is not None:
                if identifier in self.identifiers:
                    return Response(400, error_body("invalid_identifier", "The identifier was already used."))
                self.identifiers.add(identifier)
            current = self.price
            krw, btc = self.balances["KRW"], self.balances["BTC"]
            total = price if ord_type == "price" else (volume * (price if ord_type == "limit" else current))
            if total < MIN_TOTAL:
                name = "under_min_total_bid" if side == "bid" else "under_min_total_ask"
                return Response(400, error_body(name, f"The minimum order amount is {MIN_TOTAL} KRW."))
            if side == "bid" and krw["balance"] < total * (1 + FEE_RATE):
                return Response(400, error_body("insufficient_funds_bid", "Insufficient KRW balance."))
            if side == "ask" and btc["balance"] < volume:
                return Response(400, error_body("insufficient_funds_ask", "Insufficient BTC balance."))
            order: dict[str, Any] = {
                "uuid": str(uuid_module.uuid4()),
                "side": side,
                "ord_type": ord_type,
                "price": price,
                "state": "wait",
                "market": market,
                "created_at": datetime.now(KST).isoformat(timespec="seconds"),
                "volume": volume,
                "remaining_volume": volume,
                "reserved_fee": Decimal("0"),
                "remaining_fee": Decimal("0"),
                "paid_fee": Decimal("0"),
                "locked": Decimal("0"),
                "executed_volume": Decimal("0"),
                "trades_count": 0,
                "identifier": identifier,
                "trades": [],
            }
            if ord_type == "limit":
                if side == "bid":
                    locked = total * (1 + FEE_RATE)
                    krw["balance"] -= locked
                    krw["locked"] += locked
                else:
                    locked = volume
                    btc["balance"] -= volume
                    btc["locked"] += volume
                order["locked"] = locked
            else:
                self._fill(order, current)
            self.orders[order["uuid"]] = order
            return Response(201, self._public_order(order, with_trades=False))

    def _fill(self, order: dict[str, Any], current: Decimal) -> None:
        krw, btc = self.balances["KRW"], self.balances["BTC"]
        if order["side"] == "bid":
            funds = order["price"]
            volume = (funds / current).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
            funds = volume * current
            fee = (funds * FEE_RATE).quantize(Decimal("0.0001"))
            krw["balance"] -= funds + fee
            btc["balance"] += volume
            btc["avg_buy_price"] = current
        else:
            volume = order["volume"]
            funds = volume * current
            fee = (funds * FEE_RATE).quantize(Decimal("0.0001"))
            btc["balance"] -= volume
            krw["balance"] += funds - fee
            order["remaining_volume"] = Decimal("0")
        order.update(state="done", executed_volume=volume, paid_fee=fee, trades_count=1)
        order["trades"] = [{"price": current, "volume": volume, "funds": funds}]

    def _find(self, request: RecordedRequest) -> tuple[dict[str, Any] | None, Response | None]:
        uuid = (request.params.get("uuid") or [None])[0]
        identifier = (request.params.get("identifier") or [None])[0]
        if not uuid and not identifier:
            return None, Response(400, error_body("invalid_parameter", "uuid or identifier is required"))
        with self._state_lock:
            for order in self.orders.values():
                if (uuid and order["uuid"] == uuid) or (identifier and order["identifier"] == identifier):
                    return order, None
        return None, Response(404, error_body("order_not_found", "Order not found."))

    def _get_order(self, request: RecordedRequest) -> Response:
        order, failure = self._find(request)
        if failure is not None:
            return failure
        with self._state_lock:
            return Response(200, self._public_order(order, with_trades=True))

    def _open_orders(self, request: RecordedRequest) -> Response:
        params = dict(parse_qsl(request.query))
        states = request.params.get("states[]") or ["wait", "watch"]
        with self._state_lock:
            rows = [
                self._public_order(order, with_trades=False)
                for order in self.orders.values()
                if order["state"] in states and order["market"] == params.get("market", order["market"])
            ]
        return Response(200, rows)

    def _cancel(self, request: RecordedRequest) -> Response:
        order, failure = self._find(request)
        if failure is not None:
            return failure
        with self._state_lock:
            if order["state"] not in ("wait", "watch"):
                return Response(400, error_body("order_not_cancellable", "The order cannot be cancelled."))
            if order["side"] == "bid":
                self.balances["KRW"]["locked"] -= order["locked"]
                self.balances["KRW"]["balance"] += order["locked"]
            else:
                self.balances["BTC"]["locked"] -= order["locked"]
                self.balances["BTC"]["balance"] += order["locked"]
            order["state"] = "cancel"
            return Response(200, self._public_order(order, with_trades=False))

    # -- HTTP control (for a fake running in another process) -----------------------------
    def _control(self, request: RecordedRequest) -> Response:
        command = request.path[len("/_fake/") :]
        payload = request.json() or {} if request.method == "POST" else {}
        if command == "price":
            self.set_price(payload["price"])
            return Response(200, {"price": str(self.price)})
        if command == "fault":
            kind = payload["kind"]
            if kind == "status":
                fault = Fault.status(int(payload.get("status", 500)), payload.get("body"), payload.get("headers"))
            else:
                fault = Fault(kind, seconds=float(payload.get("seconds", 0)))
            self.add_fault(
                fault,
                path=payload.get("path"),
                method=payload.get("method"),
                times=payload.get("times", 1),
                fraction=payload.get("fraction"),
                seed=int(payload.get("seed", 0)),
            )
            return Response(200, {"ok": True})
        if command == "clear_faults":
            self.clear_faults()
            return Response(200, {"ok": True})
        if command == "orders":
            with self._state_lock:
                return Response(200, [self._public_order(order, True) for order in self.orders.values()])
        if command == "requests":
            return Response(
                200,
                [
                    {"method": item.method, "path": item.path, "query": item.query}
                    for item in self.calls()
                    if not item.path.startswith("/_fake/")
                ],
            )
        return Response(404, {"error": f"unknown control command {command}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Upbit API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--price", default="100000000")
    parser.add_argument("--krw", default="1000000")
    parser.add_argument("--btc", default="0.01")
    parser.add_argument("--no-rate-limit", action="store_true")
    arguments = parser.parse_args(argv)
    server = FakeUpbit(
        price=Decimal(arguments.price),
        krw_balance=Decimal(arguments.krw),
        btc_balance=Decimal(arguments.btc),
        rate_limits=None if arguments.no_rate_limit else DEFAULT_LIMITS,
        port=arguments.port,
    )
    server.start()
    print(f"FAKE_UPBIT_URL={server.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
