"""Order matching and balance bookkeeping of the paper exchange.

The paper exchange is its own "remote" system: these functions are what
Upbit's servers do, against our database. Each mutation is one short local
transaction that locks the account's balance rows (``select_for_update``, KRW
before BTC) so concurrent processes never double-spend.

Rules (as on Upbit KRW-BTC):

- fee 0.05 % of the KRW value of each fill, rounded *down* to 1e-8 KRW; a bid
  pays it on top, an ask receives the proceeds minus it;
- minimum order value 5,000 KRW; limit prices on the 1,000 KRW tick;
  volumes have at most 8 decimals;
- ``price`` (market buy by KRW amount) and ``market`` (market sell by volume)
  orders fill at once at the current price; a buy's volume is the amount
  divided by the price, rounded down to 1e-8 BTC;
- a limit order that is marketable when placed fills at once at the current
  price; otherwise it rests and fills at its limit price for every simulated
  step (10 s) in which the market price reached it, at most
  ``liquidity_per_step`` BTC per step (so large orders fill partially). Fills
  are computed lazily when orders or balances are looked at, scanning at most
  the last ``MAX_SCAN_STEPS`` steps;
- an identifier is consumed by every placement that passes parameter
  validation, even one refused for insufficient funds: it can never be used
  again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from django.db import IntegrityError, transaction

from paper_exchange.models import PaperAccount, PaperBalance, PaperIdentifier, PaperOrder
from trading.clients.exchange.errors import (
    BelowMinimumOrderError,
    InsufficientFundsError,
    InvalidRequestError,
    OrderNotFoundError,
)

FEE_RATE = Decimal("0.0005")
MIN_TOTAL_KRW = Decimal("5000")
PRICE_TICK = Decimal("1000")
SATOSHI = Decimal("0.00000001")
MAX_SCAN_STEPS = 360  # one hour of 10 s steps
DEFAULT_LIQUIDITY_PER_STEP = Decimal("0.05")  # BTC a resting order can get per 10 s step
DEFAULT_ACCOUNT = "default"
ZERO = Decimal("0")


def quantize_down(value: Decimal) -> Decimal:
    return value.quantize(SATOSHI, rounding=ROUND_DOWN)


def fee_of(funds: Decimal) -> Decimal:
    return quantize_down(funds * FEE_RATE)


@dataclass(frozen=True)
class MarketState:
    """Where the simulated market is now: the step index, its price, and the price of any step."""

    step: int
    price: Decimal
    now: datetime
    price_at_step: Callable[[int], Decimal]


# -- accounts -----------------------------------------------------------------------


def ensure_account(starting_krw: Callable[[], Decimal], name: str = DEFAULT_ACCOUNT) -> PaperAccount:
    """The account, created on first use with ``starting_krw()`` KRW (kept across restarts)."""
    account = PaperAccount.objects.filter(name=name).first()
    if account is not None:
        return account
    amount = Decimal(starting_krw())
    try:
        with transaction.atomic():
            account = PaperAccount.objects.create(name=name)
            PaperBalance.objects.create(account=account, currency="KRW", balance=amount)
            PaperBalance.objects.create(account=account, currency="BTC")
    except IntegrityError:  # another process created it first
        account = PaperAccount.objects.get(name=name)
    return account


def _locked_balances(account: PaperAccount, market: str) -> tuple[PaperBalance, PaperBalance]:
    """The quote (KRW) and base (BTC) balance rows, locked in a fixed order; created when missing."""
    quote, base = market.split("-", 1)

    def lock() -> dict[str, PaperBalance]:
        rows = PaperBalance.objects.select_for_update().filter(account=account, currency__in=(quote, base))
        return {row.currency: row for row in rows.order_by("currency")}

    rows = lock()
    if len(rows) < 2:  # a currency this account never held
        for currency in (quote, base):
            PaperBalance.objects.get_or_create(account=account, currency=currency)
        rows = lock()
    return rows[quote], rows[base]


def list_balances(account: PaperAccount) -> list[PaperBalance]:
    return list(PaperBalance.objects.filter(account=account).order_by("currency"))


# -- placing ------------------------------------------------------------------------


def _decimal(value: Decimal | str | int | None, what: str, side: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except Exception:
        raise InvalidRequestError(f"{what} must be a number", name=f"invalid_{what}_{side}", status=400) from None
    if not number.is_finite() or number <= 0:
        raise InvalidRequestError(f"{what} must be positive", name=f"invalid_{what}_{side}", status=400)
    return number


def validate_order(
    *,
    market: str,
    supported_market: str,
    side: str,
    ord_type: str,
    price: Decimal | None,
    volume: Decimal | None,
    market_price: Decimal,
) -> tuple[Decimal | None, Decimal | None]:
    """Upbit's parameter rules; returns (price, volume) as Decimals. Raises before any identifier is used."""
    if market != supported_market:
        raise InvalidRequestError(f"market {market} is not traded on the paper exchange", name="invalid_market")
    if side not in ("bid", "ask"):
        raise InvalidRequestError("side must be bid or ask", name="invalid_side", status=400)
    if ord_type == "limit":
        price, volume = _decimal(price, "price", side), _decimal(volume, "volume", side)
        if price % PRICE_TICK:
            raise InvalidRequestError(
                f"limit price must be a multiple of {PRICE_TICK} KRW", name=f"invalid_price_{side}", status=400
            )
        total = price * volume
    elif ord_type == "price" and side == "bid":
        if volume is not None:
            raise InvalidRequestError("a price order takes no volume", name="invalid_volume_bid", status=400)
        price = _decimal(price, "price", side)
        total = price
    elif ord_type == "market" and side == "ask":
        if price is not None:
            raise InvalidRequestError("a market order takes no price", name="invalid_price_ask", status=400)
        volume = _decimal(volume, "volume", side)
        total = volume * market_price
    else:
        raise InvalidRequestError(f"ord_type {ord_type} is not valid for side {side}", name="invalid_ord_type")
    if volume is not None and volume != volume.quantize(SATOSHI, rounding=ROUND_DOWN):
        raise InvalidRequestError("volume has more than 8 decimals", name=f"invalid_volume_{side}", status=400)
    if total < MIN_TOTAL_KRW:
        raise BelowMinimumOrderError(
            f"order total {total:.0f} KRW is below the minimum of {MIN_TOTAL_KRW} KRW",
            name=f"under_min_total_{side}",
            status=400,
        )
    return price, volume


def consume_identifier(identifier: str) -> None:
    """Use ``identifier`` up for good; a second use is refused like Upbit does."""
    if not identifier or len(identifier) > 100:
        raise InvalidRequestError("identifier must be 1 to 100 characters", name="invalid_identifier", status=400)
    try:
        with transaction.atomic():
            PaperIdentifier.objects.create(identifier=identifier)
    except IntegrityError:
        raise InvalidRequestError(
            "identifier has already been used (identifiers are unique forever)",
            name="invalid_identifier",
            status=400,
        ) from None


def place_order(
    account: PaperAccount,
    state: MarketState,
    *,
    market: str,
    side: str,
    ord_type: str,
    identifier: str,
    price: Decimal | None,
    volume: Decimal | None,
    liquidity_per_step: Decimal,
) -> PaperOrder:
    """Create the order (identifier already consumed and parameters validated) and match what can be matched."""
    with transaction.atomic():
        quote, base = _locked_balances(account, market)
        order = PaperOrder(
            account=account,
            identifier=identifier,
            market=market,
            side=side,
            ord_type=ord_type,
            price=price,
            volume=volume,
            created_at=state.now,
            last_fill_step=state.step,
        )
        if ord_type == "price":
            _fill_market_bid(order, quote, base, state.price)
        elif ord_type == "market":
            _fill_market_ask(order, quote, base, state.price)
        else:
            _lock_limit(order, quote, base)
            order.save()
            marketable = state.price <= price if side == "bid" else state.price >= price
            if marketable:
                _fill(order, quote, base, min(volume, liquidity_per_step), state.price)
            _finish_if_filled(order, quote, base)
        order.save()
        quote.save()
        base.save()
        return order


def _insufficient(side: str, needed: Decimal, available: Decimal, currency: str) -> InsufficientFundsError:
    return InsufficientFundsError(
        f"insufficient {currency}: the order needs {needed} and {available} is free",
        name=f"insufficient_funds_{side}",
        status=400,
    )


def _fill_market_bid(order: PaperOrder, quote: PaperBalance, base: PaperBalance, price: Decimal) -> None:
    amount = order.price
    needed = amount + fee_of(amount)
    if quote.balance < needed:
        raise _insufficient("bid", needed, quote.balance, quote.currency)
    volume = quantize_down(amount / price)
    funds = volume * price
    fee = fee_of(funds)
    quote.balance -= funds + fee
    _add_base(base, volume, funds)
    order.executed_volume, order.executed_funds, order.paid_fee = volume, funds, fee
    order.state = PaperOrder.State.DONE


def _fill_market_ask(order: PaperOrder, quote: PaperBalance, base: PaperBalance, price: Decimal) -> None:
    volume = order.volume
    if base.balance < volume:
        raise _insufficient("ask", volume, base.balance, base.currency)
    funds = quantize_down(volume * price)
    fee = fee_of(funds)
    base.balance -= volume
    quote.balance += funds - fee
    order.executed_volume, order.executed_funds, order.paid_fee = volume, funds, fee
    order.state = PaperOrder.State.DONE


def _lock_limit(order: PaperOrder, quote: PaperBalance, base: PaperBalance) -> None:
    if order.side == "bid":
        total = order.price * order.volume
        # Fees are rounded down per fill, so their sum never exceeds the fee of the total.
        needed = total + fee_of(total)
        balance = quote
    else:
        needed = order.volume
        balance = base
    if balance.balance < needed:
        raise _insufficient(order.side, needed, balance.balance, balance.currency)
    balance.balance -= needed
    balance.locked += needed
    order.locked = needed


def _add_base(base: PaperBalance, volume: Decimal, funds: Decimal) -> None:
    held = base.balance + base.locked
    if held + volume > 0:
        base.avg_buy_price = ((held * base.avg_buy_price + funds) / (held + volume)).quantize(SATOSHI)
    base.balance += volume


def _fill(order: PaperOrder, quote: PaperBalance, base: PaperBalance, volume: Decimal, price: Decimal) -> None:
    """One fill of a limit order, out of what the order holds locked."""
    volume = min(volume, order.volume - order.executed_volume)
    if volume <= 0:
        return
    funds = quantize_down(volume * price)
    fee = fee_of(funds)
    if order.side == "bid":
        spent = funds + fee
        order.locked -= spent
        quote.locked -= spent
        _add_base(base, volume, funds)
    else:
        order.locked -= volume
        base.locked -= volume
        quote.balance += funds - fee
    order.executed_volume += volume
    order.executed_funds += funds
    order.paid_fee += fee


def _release(order: PaperOrder, quote: PaperBalance, base: PaperBalance) -> None:
    balance = quote if order.side == "bid" else base
    balance.locked -= order.locked
    balance.balance += order.locked
    order.locked = ZERO


def _finish_if_filled(order: PaperOrder, quote: PaperBalance, base: PaperBalance) -> None:
    if order.executed_volume >= order.volume:
        _release(order, quote, base)
        order.state = PaperOrder.State.DONE


# -- lazy matching of resting limit orders ------------------------------------------


def match_open_orders(
    account: PaperAccount, market: str, state: MarketState, liquidity_per_step: Decimal, only: PaperOrder | None = None
) -> None:
    """Fill resting limit orders for every step since they were last looked at in which the price reached them."""
    open_orders = PaperOrder.objects.filter(account=account, market=market, state=PaperOrder.State.WAIT)
    if only is not None:
        open_orders = open_orders.filter(pk=only.pk)
    if not open_orders.filter(last_fill_step__lt=state.step).exists():
        return
    with transaction.atomic():
        quote, base = _locked_balances(account, market)
        for order in open_orders.select_for_update().filter(last_fill_step__lt=state.step).order_by("created_at"):
            first = max(order.last_fill_step + 1, state.step - MAX_SCAN_STEPS + 1)
            crossing_steps = 0
            for step in range(first, state.step + 1):
                price = state.price if step == state.step else state.price_at_step(step)
                if (order.side == "bid" and price <= order.price) or (order.side == "ask" and price >= order.price):
                    crossing_steps += 1
            if crossing_steps:
                _fill(order, quote, base, liquidity_per_step * crossing_steps, order.price)
                _finish_if_filled(order, quote, base)
            order.last_fill_step = state.step
            order.save()
        quote.save()
        base.save()


# -- looking up and cancelling ------------------------------------------------------


def find_order(account: PaperAccount, *, uuid: str | None = None, identifier: str | None = None) -> PaperOrder:
    if not uuid and not identifier:
        raise InvalidRequestError("uuid or identifier is required", name="validation_error", status=400)
    orders = PaperOrder.objects.filter(account=account)
    if uuid:
        try:
            parsed = UUID(str(uuid))
        except ValueError:
            raise OrderNotFoundError("order not found", name="order_not_found", status=404) from None
        order = orders.filter(uuid=parsed).first()
    else:
        order = orders.filter(identifier=identifier).first()
    if order is None:
        raise OrderNotFoundError("order not found", name="order_not_found", status=404)
    return order


def list_open_orders(account: PaperAccount, market: str) -> list[PaperOrder]:
    return list(
        PaperOrder.objects.filter(account=account, market=market, state=PaperOrder.State.WAIT).order_by("-created_at")
    )


def cancel_order(account: PaperAccount, order: PaperOrder) -> PaperOrder:
    with transaction.atomic():
        quote, base = _locked_balances(account, order.market)
        order = PaperOrder.objects.select_for_update().get(pk=order.pk)
        if order.state != PaperOrder.State.WAIT:
            raise InvalidRequestError(
                f"order is {order.state} and cannot be cancelled", name="order_not_cancellable", status=400
            )
        _release(order, quote, base)
        order.state = PaperOrder.State.CANCEL
        order.save()
        quote.save()
        base.save()
        return order
