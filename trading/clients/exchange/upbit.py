"""The real Upbit REST client (https://docs.upbit.com).

* One ``requests.Session`` (connection reuse); every call has a connect and a read timeout.
* Auth: an HS256 JWT signed with the secret key carrying ``access_key``, a fresh
  ``nonce`` per request and, whenever there are parameters (query string or JSON
  body alike), ``query_hash`` = SHA-512 hex of the *unescaped* url-encoded
  parameters (arrays as ``key[]=a&key[]=b``) with ``query_hash_alg: SHA512``.
* Rate limits: per-group throttling and 418 bans, see ``rate_limit.py``.
* Reads go through the shared retry policy (``trading.clients.retry``).
  Placing an order is never retried blindly: ``identifier`` is unique forever on
  Upbit, so after an ambiguous failure the order is looked up by identifier.
* Errors are the typed errors of ``errors.py``; messages never contain keys or tokens.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import time
import uuid as uuid_module
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode

import jwt
import requests
import structlog

from health.metrics import EXCHANGE_CALLS, EXCHANGE_RATE_LIMITED, EXCHANGE_RETRIES
from trading.clients.exchange.base import Balance, Candle, Exchange, ExchangeOrder, OrderChance, Ticker
from trading.clients.exchange.errors import (
    AuthenticationError,
    BannedError,
    BelowMinimumOrderError,
    ExchangeError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderNotFoundError,
    OrderNotPlacedError,
    OrderStateUnknownError,
    RateLimitedError,
    TransientExchangeError,
)
from trading.clients.exchange.rate_limit import DEFAULT_BAN_SECONDS, RateLimiter
from trading.clients.retry import call_with_retry

logger = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_CANDLES_PER_REQUEST = 200
# Before looking up an order whose placement failed ambiguously, give the
# exchange a moment to finish what it may have accepted.
AMBIGUITY_SETTLE_SECONDS = 1.0

AUTHENTICATION_ERROR_NAMES = frozenset(
    {
        "invalid_query_payload",
        "jwt_verification",
        "expired_access_key",
        "nonce_used",
        "no_authorization_token",
        "no_authorization_ip",
        "invalid_access_key",
        "out_of_scope",
    }
)
INSUFFICIENT_FUNDS_NAMES = frozenset({"insufficient_funds_bid", "insufficient_funds_ask"})
BELOW_MINIMUM_NAMES = frozenset({"under_min_total_bid", "under_min_total_ask"})
_BAN_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(seconds?|secs?|s\b|초|minutes?|mins?|분)", re.IGNORECASE)


def build_query_string(params: dict[str, Any]) -> str:
    """Url-encode ``params`` the way Upbit expects; list values become ``key[]=a&key[]=b``."""
    pairs: list[tuple[str, Any]] = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            name = key if key.endswith("[]") else f"{key}[]"
            pairs.extend((name, item) for item in value)
        else:
            pairs.append((key, value))
    return urlencode(pairs, doseq=True)


def query_hash(params: dict[str, Any]) -> str:
    """SHA-512 hex of the unescaped url-encoded parameters (Upbit's ``query_hash``)."""
    return hashlib.sha512(unquote(build_query_string(params)).encode("utf-8")).hexdigest()


def make_token(access_key: str, secret_key: str, params: dict[str, Any] | None = None) -> str:
    """A signed JWT for one request (fresh nonce)."""
    payload: dict[str, Any] = {"access_key": access_key, "nonce": str(uuid_module.uuid4())}
    if params:
        payload["query_hash"] = query_hash(params)
        payload["query_hash_alg"] = "SHA512"
    return jwt.encode(payload, secret_key, algorithm="HS256")


def _decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise TransientExchangeError(f"Upbit sent a malformed number: {str(value)[:40]!r}") from error


def _required_decimal(data: dict[str, Any], key: str) -> Decimal:
    value = _decimal(data.get(key))
    if value is None:
        raise TransientExchangeError(f"Upbit answer lacks '{key}'")
    return value


def _datetime_from_ms(milliseconds: int) -> datetime:
    milliseconds = int(milliseconds)
    return datetime.fromtimestamp(milliseconds // 1000, UTC) + timedelta(milliseconds=milliseconds % 1000)


def _parse_datetime(value: str) -> datetime:
    """ISO 8601 (``+09:00`` offsets, or naive meaning UTC) → aware UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _format_decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _parse(endpoint: str, parse: Callable[[Any], T], data: Any) -> T:
    """Turn an answer of an unexpected shape into a typed (transient) error instead of a KeyError."""
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise TransientExchangeError(
            f"Upbit {endpoint}: unexpected answer shape ({type(error).__name__}: {str(error)[:80]})",
            name="unexpected_answer",
        ) from None


def _ban_seconds(retry_after: str | None, message: str) -> float:
    if retry_after:
        try:
            return max(float(retry_after), 1.0)
        except ValueError:
            pass
    match = _BAN_DURATION_RE.search(message or "")
    if match:
        amount = float(match.group(1))
        unit = match.group(2).lower()
        return amount * 60 if unit.startswith(("min", "분")) else amount
    return DEFAULT_BAN_SECONDS


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class UpbitExchange(Exchange):
    """Upbit over HTTPS. One instance per process (the factory keeps it); thread-safe."""

    name = "upbit"

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        base_url: str = "https://api.upbit.com",
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rate_limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        close_at_exit: bool = True,
    ) -> None:
        self._access_key = access_key or ""
        self._secret_key = secret_key or ""
        self._base_url = base_url.rstrip("/")
        self._timeout = (float(connect_timeout), float(read_timeout))
        self._sleep = sleep
        self.rate_limiter = rate_limiter or RateLimiter(clock=clock, sleep=sleep)
        self._session = session or requests.Session()
        self._session.headers.update({"Accept": "application/json"})
        if close_at_exit:
            reference = weakref.ref(self)
            atexit.register(lambda: (instance := reference()) is not None and instance.close())

    def __repr__(self) -> str:  # never show keys
        return f"<UpbitExchange {self._base_url}>"

    def close(self) -> None:
        self._session.close()

    # -- transport ---------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        for secret in (self._access_key, self._secret_key):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _call(
        self,
        method: str,
        endpoint: str,
        group: str,
        *,
        path: str | None = None,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        private: bool = True,
    ) -> Any:
        """One HTTP exchange (no retry): throttle, sign, send, map the answer or raise a typed error."""
        path = path or endpoint
        outcome = "error"
        try:
            result = self._send(method, endpoint, group, path, params, body, private)
            outcome = "ok"
            return result
        except ExchangeError as error:
            outcome = type(error).__name__
            raise
        finally:
            EXCHANGE_CALLS.labels(group, endpoint, outcome).inc()

    def _send(
        self,
        method: str,
        endpoint: str,
        group: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        private: bool,
    ) -> Any:
        if private and not (self._access_key and self._secret_key):
            raise AuthenticationError("Upbit API keys are not configured (UPBIT_ACCESS_KEY / UPBIT_SECRET_KEY)")
        self.rate_limiter.acquire(group)
        url = self._base_url + path
        headers: dict[str, str] = {}
        data: bytes | None = None
        if params:
            url += "?" + build_query_string(params)
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        if private:
            token = make_token(self._access_key, self._secret_key, params or body)
            headers["Authorization"] = f"Bearer {token}"
        where = f"{method} {endpoint}"
        started = time.monotonic()
        try:
            response = self._session.request(method, url, data=data, headers=headers, timeout=self._timeout)
        except requests.Timeout:
            # ``from None``: the requests exception text carries the full URL; keep logs lean.
            raise TransientExchangeError(f"Upbit {where}: timed out", name="timeout") from None
        except requests.RequestException as error:
            raise TransientExchangeError(f"Upbit {where}: connection failed ({type(error).__name__})") from None
        elapsed_ms = round((time.monotonic() - started) * 1000, 1)
        self.rate_limiter.observe(group, response.headers.get("Remaining-Req"))
        logger.debug("upbit_call", endpoint=endpoint, method=method, status=response.status_code, ms=elapsed_ms)
        if response.status_code < 400:
            try:
                return response.json(parse_float=Decimal)
            except ValueError:
                raise TransientExchangeError(f"Upbit {where}: unreadable answer") from None
        raise self._error_from(response, where, group)

    def _error_from(self, response: requests.Response, where: str, group: str) -> ExchangeError:
        status = response.status_code
        name, message = "", ""
        try:
            payload = response.json()
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            name = str(error.get("name") or "")
            message = str(error.get("message") or "")
        except ValueError:
            message = response.text[:200]
        message = self._redact(message)
        text = f"Upbit {where}: HTTP {status} {name or ''} {message}".replace("  ", " ").strip()
        if status == 429:
            EXCHANGE_RATE_LIMITED.labels(group, "429").inc()
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            self.rate_limiter.pause(group, retry_after if retry_after is not None else 1.0)
            logger.warning("upbit_rate_limited", group=group, endpoint=where, retry_after=retry_after)
            return RateLimitedError(text, retry_after=retry_after, name=name or "too_many_requests", status=status)
        if status == 418:
            EXCHANGE_RATE_LIMITED.labels(group, "418").inc()
            seconds = _ban_seconds(response.headers.get("Retry-After"), message)
            until = self.rate_limiter.ban(group, seconds)
            logger.error("upbit_banned", group=group, endpoint=where, ban_seconds=seconds)
            return BannedError(text, until=until, name=name or "banned", status=status)
        if status >= 500:
            return TransientExchangeError(text, name=name, status=status)
        if status == 401 or name in AUTHENTICATION_ERROR_NAMES:
            return AuthenticationError(text, name=name, status=status)
        if name in INSUFFICIENT_FUNDS_NAMES:
            return InsufficientFundsError(text, name=name, status=status)
        if name in BELOW_MINIMUM_NAMES:
            return BelowMinimumOrderError(text, name=name, status=status)
        if name == "order_not_found" or status == 404:
            return OrderNotFoundError(text, name=name, status=status)
        return InvalidRequestError(text, name=name, status=status)

    def _read(self, endpoint: str, group: str, parse: Callable[[Any], T], **kwargs: Any) -> T:
        """A GET under the shared retry policy; each attempt is freshly signed and its answer parsed.

        An answer of an unexpected shape counts as transient (a proxy or a deploy hiccup) and is retried.
        """

        def attempt() -> T:
            return _parse(endpoint, parse, self._call("GET", endpoint, group, **kwargs))

        def count_retry(error: BaseException, attempt_number: int) -> None:
            EXCHANGE_RETRIES.labels(group).inc()

        return call_with_retry(f"upbit GET {endpoint}", attempt, sleep=self._sleep, on_retry=count_retry)

    # -- quotation ---------------------------------------------------------------------
    def get_ticker(self, market: str) -> Ticker:
        return self._read(
            "/v1/ticker",
            "quotation",
            lambda data: self._ticker(data, market),
            params={"markets": market},
            private=False,
        )

    @staticmethod
    def _ticker(data: Any, market: str) -> Ticker:
        rows = [row for row in data if isinstance(row, dict) and row.get("market") == market] if data else []
        if not rows:
            raise InvalidRequestError(f"Upbit has no ticker for {market!r}", name="no_ticker")
        row = rows[0]
        return Ticker(
            market=row["market"],
            trade_price=_required_decimal(row, "trade_price"),
            opening_price=_required_decimal(row, "opening_price"),
            high_price=_required_decimal(row, "high_price"),
            low_price=_required_decimal(row, "low_price"),
            acc_trade_volume_24h=_required_decimal(row, "acc_trade_volume_24h"),
            signed_change_rate=_required_decimal(row, "signed_change_rate"),
            timestamp=_datetime_from_ms(row["timestamp"]),
        )

    def get_minute_candles(
        self, market: str, unit: int = 1, count: int = 200, to: datetime | None = None
    ) -> list[Candle]:
        """Up to ``count`` candles before ``to`` (default now), oldest first; pages backwards past 200."""
        if unit not in (1, 3, 5, 10, 15, 30, 60, 240):
            raise InvalidRequestError(f"Upbit has no {unit}-minute candles", name="invalid_unit")
        if count < 1:
            return []
        candles: dict[datetime, Candle] = {}
        cursor = to
        while len(candles) < count:
            page_size = min(MAX_CANDLES_PER_REQUEST, count - len(candles))
            params: dict[str, Any] = {"market": market, "count": page_size}
            if cursor is not None:
                params["to"] = cursor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            page = self._read(
                "/v1/candles/minutes/{unit}",
                "quotation",
                lambda rows: [self._candle(row) for row in rows or []],
                path=f"/v1/candles/minutes/{unit}",
                params=params,
                private=False,
            )
            new = [candle for candle in page if candle.timestamp not in candles]
            for candle in new:
                candles[candle.timestamp] = candle
            if len(page) < page_size or not new:
                break  # no older history
            cursor = min(candle.timestamp for candle in page)
        ordered = sorted(candles.values(), key=lambda candle: candle.timestamp)
        return ordered[-count:]

    @staticmethod
    def _candle(row: dict[str, Any]) -> Candle:
        return Candle(
            market=row["market"],
            timestamp=_parse_datetime(row["candle_date_time_utc"]),
            opening_price=_required_decimal(row, "opening_price"),
            high_price=_required_decimal(row, "high_price"),
            low_price=_required_decimal(row, "low_price"),
            trade_price=_required_decimal(row, "trade_price"),
            volume=_required_decimal(row, "candle_acc_trade_volume"),
        )

    # -- account -----------------------------------------------------------------------
    def get_accounts(self) -> list[Balance]:
        return self._read("/v1/accounts", "default", self._balances)

    @staticmethod
    def _balances(rows: Any) -> list[Balance]:
        return [
            Balance(
                currency=row["currency"],
                balance=_decimal(row.get("balance"), Decimal("0")),
                locked=_decimal(row.get("locked"), Decimal("0")),
                avg_buy_price=_decimal(row.get("avg_buy_price"), Decimal("0")),
            )
            for row in rows
        ]

    def get_order_chance(self, market: str) -> OrderChance:
        return self._read(
            "/v1/orders/chance", "default", lambda data: self._chance(data, market), params={"market": market}
        )

    @staticmethod
    def _chance(data: Any, market: str) -> OrderChance:
        market_info = data.get("market") or {}
        minimums = [_decimal((market_info.get(side) or {}).get("min_total"), Decimal("0")) for side in ("bid", "ask")]
        return OrderChance(
            market=market_info.get("id", market),
            bid_fee=_required_decimal(data, "bid_fee"),
            ask_fee=_required_decimal(data, "ask_fee"),
            min_total=max(minimums),
            bid_balance=_decimal((data.get("bid_account") or {}).get("balance"), Decimal("0")),
            ask_balance=_decimal((data.get("ask_account") or {}).get("balance"), Decimal("0")),
        )

    # -- orders ------------------------------------------------------------------------
    @staticmethod
    def _order(row: dict[str, Any]) -> ExchangeOrder:
        trades = row.get("trades") or []
        price = _decimal(row.get("price"))
        executed_volume = _decimal(row.get("executed_volume"), Decimal("0"))
        if trades:
            executed_funds = sum((_decimal(trade.get("funds"), Decimal("0")) for trade in trades), Decimal("0"))
        elif row.get("executed_funds") is not None:
            executed_funds = _decimal(row.get("executed_funds"), Decimal("0"))
        elif row.get("avg_price") is not None:
            executed_funds = executed_volume * _decimal(row.get("avg_price"), Decimal("0"))
        elif row.get("ord_type") == "limit" and price is not None:
            executed_funds = executed_volume * price
        else:
            executed_funds = Decimal("0")
        return ExchangeOrder(
            uuid=row["uuid"],
            identifier=row.get("identifier"),
            market=row["market"],
            side=row["side"],
            ord_type=row["ord_type"],
            state=row["state"],
            price=price,
            volume=_decimal(row.get("volume")),
            remaining_volume=_decimal(row.get("remaining_volume"), Decimal("0")),
            executed_volume=executed_volume,
            executed_funds=executed_funds,
            paid_fee=_decimal(row.get("paid_fee"), Decimal("0")),
            created_at=_parse_datetime(row["created_at"]),
        )

    @staticmethod
    def _order_body(
        market: str, side: str, ord_type: str, identifier: str, price: Decimal | None, volume: Decimal | None
    ) -> dict[str, str]:
        if side not in ("bid", "ask"):
            raise InvalidRequestError(f"side must be 'bid' or 'ask', not {side!r}", name="invalid_side")
        needs = {
            ("bid", "price"): (True, False),
            ("ask", "market"): (False, True),
            ("bid", "limit"): (True, True),
            ("ask", "limit"): (True, True),
        }.get((side, ord_type))
        if needs is None:
            raise InvalidRequestError(f"{side} orders cannot be of type {ord_type!r}", name="invalid_ord_type")
        if not identifier:
            raise InvalidRequestError("an identifier is required", name="invalid_identifier")
        needs_price, needs_volume = needs
        for label, value, needed in (("price", price, needs_price), ("volume", volume, needs_volume)):
            if needed and (value is None or value <= 0):
                raise InvalidRequestError(f"{side}/{ord_type} needs a positive {label}", name="invalid_parameter")
            if not needed and value is not None:
                raise InvalidRequestError(f"{side}/{ord_type} takes no {label}", name="invalid_parameter")
        body = {"market": market, "side": side, "ord_type": ord_type}
        if price is not None:
            body["price"] = _format_decimal(Decimal(price))
        if volume is not None:
            body["volume"] = _format_decimal(Decimal(volume))
        body["identifier"] = identifier
        return body

    def place_order(
        self,
        *,
        market: str,
        side: str,
        ord_type: str,
        identifier: str,
        price: Decimal | None = None,
        volume: Decimal | None = None,
    ) -> ExchangeOrder:
        """Exactly one POST. Ambiguous failure → lookup by identifier (see module docstring).

        Raises the typed 4xx errors when Upbit refused the order (it was not placed),
        ``OrderNotPlacedError`` when the lookup proves it absent, ``OrderStateUnknownError``
        when the lookup fails too.
        """
        body = self._order_body(market, side, ord_type, identifier, price, volume)
        try:
            return _parse("/v1/orders", self._order, self._call("POST", "/v1/orders", "order", body=body))
        except TransientExchangeError as error:
            logger.warning("upbit_order_ambiguous", identifier=identifier, reason=str(error)[:200])
            return self._resolve_ambiguous(error, identifier=identifier, action="placement")

    def _resolve_ambiguous(
        self, error: ExchangeError, *, uuid: str | None = None, identifier: str | None = None, action: str
    ) -> ExchangeOrder:
        self._sleep(AMBIGUITY_SETTLE_SECONDS)
        try:
            order = self.get_order(uuid=uuid, identifier=identifier)
        except OrderNotFoundError:
            if action == "placement":
                raise OrderNotPlacedError(
                    f"order {identifier} was not placed ({error}); it may be retried with a new identifier",
                    name="order_not_placed",
                ) from error
            raise
        except ExchangeError as lookup_error:
            raise OrderStateUnknownError(
                f"{action} of order {uuid or identifier} failed ambiguously ({error}) and the lookup failed "
                f"({lookup_error}); reconcile by identifier later",
                name="order_state_unknown",
            ) from lookup_error
        logger.info("upbit_order_resolved", identifier=order.identifier, uuid=order.uuid, state=order.state)
        return order

    @staticmethod
    def _order_key(uuid: str | None, identifier: str | None) -> dict[str, str]:
        if bool(uuid) == bool(identifier):
            raise InvalidRequestError("give exactly one of uuid or identifier", name="invalid_parameter")
        return {"uuid": uuid} if uuid else {"identifier": identifier}  # type: ignore[dict-item]

    def get_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder:
        return self._read("/v1/order", "default", self._order, params=self._order_key(uuid, identifier))

    def get_open_orders(self, market: str) -> list[ExchangeOrder]:
        return self._read(
            "/v1/orders/open",
            "default",
            lambda rows: [self._order(row) for row in rows],
            params={"market": market, "states": ["wait", "watch"]},
        )

    def cancel_order(self, *, uuid: str | None = None, identifier: str | None = None) -> ExchangeOrder:
        """One DELETE; after an ambiguous failure the order is looked up and returned as it stands."""
        params = self._order_key(uuid, identifier)
        try:
            return _parse("/v1/order", self._order, self._call("DELETE", "/v1/order", "order", params=params))
        except TransientExchangeError as error:
            logger.warning("upbit_cancel_ambiguous", uuid=uuid, identifier=identifier, reason=str(error)[:200])
            return self._resolve_ambiguous(error, uuid=uuid, identifier=identifier, action="cancel")
