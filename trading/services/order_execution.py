"""Executing a trade without holding a transaction or a DB connection across the network.

::

    TX1      Order(PENDING, identifier) -> commit           create_order()
    outside  place on the exchange under that identifier     place_with_replacement()
    TX       SUBMITTED + uuid -> commit                      record_exchange_order()
    outside  poll get_order every ~1 s until final/timeout   poll_order()
    TX2      status / fills -> commit                        record_exchange_order()
    TX3      position (once, via Order.position_applied)      position.apply_order_to_position()
    then     invalidate the balance cache, notify Slack

Before every exchange call the DB connection is given back (``connection.close()``
returns it to Django's pool), so nothing is checked out while the exchange or
the poll is slow. A crash anywhere leaves a row that ``reconciliation`` resolves
by ``identifier``. The DB constraint ``uniq_order_per_signal`` makes a second
execution of the same signal (another process, another cluster) return the
existing order instead of placing another; a signal is acted on at most once —
executing it again returns its latest order, FAILED or not.

Within one execution, a placement the exchange client *proved* absent
(``OrderNotPlacedError``: the POST failed ambiguously and the lookup by
identifier found nothing) is marked FAILED (kept for audit) and placed again as
a NEW order row with a new identifier (TX1 again) — at most ``MAX_PLACEMENTS``
placements in all, waiting ``REPLACEMENT_WAITS`` between them within
``PLACEMENT_BUDGET_S``. Any other outcome is never re-placed: an unknown state
stays PENDING for reconciliation (the first order may exist), a refusal
(funds, minimum, invalid, 429, 418) is FAILED.

Crash points (``_crash_point``) are no-ops unless a test installs ``crash_hook``
(see ``tests/trading/crash_worker.py``); they mark where the SIGKILL test kills
the process: ``after_tx1``, ``after_place``, ``during_poll``, ``before_tx3``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from trading.clients.exchange.base import Exchange, ExchangeOrder
from trading.clients.exchange.errors import (
    ExchangeError,
    OrderNotPlacedError,
    OrderStateUnknownError,
)
from trading.models import Order, TradingSignal
from trading.services import config as config_service
from trading.services import position as position_service
from trading.services import risk

logger = structlog.get_logger(__name__)

POLL_INTERVAL_S = 1.0
# Placements per execution, each under a new identifier, only after "proved not placed".
# At 30 % transient POST failures, 3 placements leave 2.7 % of executions unplaced, 5 leave 0.24 %.
MAX_PLACEMENTS = 5
REPLACEMENT_WAITS = (1.0, 2.0, 4.0, 4.0)  # before the 2nd..5th placement (the shared policy's 1 -> 2 -> 4 s)
PLACEMENT_BUDGET_S = 30.0  # no new placement starts later than this after the first (job timeout is 180 s)
STATUS_BY_STATE = {
    "wait": Order.Status.SUBMITTED,
    "watch": Order.Status.SUBMITTED,
    "done": Order.Status.FILLED,
    "cancel": Order.Status.CANCELLED,
}

# Test-only hook: called with the crash point's name. None in production.
crash_hook: Callable[[str], None] | None = None


def _crash_point(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


def release_connection() -> None:
    """Give the DB connection back (to the pool) before network I/O; never inside a caller's transaction."""
    if not connection.in_atomic_block:
        connection.close()


def _get_exchange() -> Exchange:
    from trading.clients.exchange import get_exchange

    return get_exchange()


def _notify(text: str, **fields: object) -> None:
    from trading.clients.slack import notify

    release_connection()  # Slack is network I/O too
    notify(text, **fields)


def _invalidate_balances(market: str) -> None:
    from trading.services import exchange_cache

    exchange_cache.invalidate_balances(market)


# ---------------------------------------------------------------- public entry points


def execute_signal(
    signal: TradingSignal,
    *,
    exchange: Exchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Order | None:
    """Trade what ``signal`` calls for; returns the order (new or already existing) or None when nothing is traded."""
    if signal.signal_type == TradingSignal.SignalType.HOLD:
        logger.info("signal_not_traded", signal_id=signal.pk, reason="HOLD signal")
        return None
    existing = Order.objects.filter(signal=signal).order_by("-created_at").first()
    if existing is not None:
        logger.info(
            "signal_already_executed", signal_id=signal.pk, identifier=existing.identifier, status=existing.status
        )
        return existing
    position = position_service.get_position(settings.TRADING_MARKET)
    decision = risk.check_signal(signal, position, exchange)
    if not decision.allowed:
        logger.info("signal_not_traded", signal_id=signal.pk, signal_type=signal.signal_type, reason=decision.reason)
        return None
    order, created = create_order(decision, reason=Order.Reason.SIGNAL, signal=signal)
    if not created:
        return order  # another execution of the same signal won the insert
    return run_order(order, exchange=exchange, sleep=sleep, clock=clock)


def close_position(
    reason: str,
    *,
    exchange: Exchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Order | None:
    """Sell the whole position for ``reason`` (stop_loss/take_profit); never while a close order is open."""
    market = settings.TRADING_MARKET
    open_close = (
        Order.objects.filter(market=market, side=Order.Side.ASK, status__in=Order.OPEN_STATUSES)
        .exclude(reason=Order.Reason.SIGNAL)
        .first()
    )
    if open_close is not None:
        logger.info("close_already_open", identifier=open_close.identifier, reason=reason)
        return None
    position = position_service.get_position(market)
    decision = risk.check_close(position, reason, exchange)
    if not decision.allowed:
        logger.info("close_not_placed", reason=reason, detail=decision.reason)
        return None
    order, _ = create_order(decision, reason=reason)
    return run_order(order, exchange=exchange, sleep=sleep, clock=clock)


class ManualOrderRejected(Exception):
    """A manual order refused by the risk checks before any order row was written; the message says why."""


MANUAL_SIDES = {"buy": Order.Side.BID, "bid": Order.Side.BID, "sell": Order.Side.ASK, "ask": Order.Side.ASK}


def _as_amount(value: Decimal | int | str, what: str, quantum: Decimal) -> Decimal:
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ManualOrderRejected(f"{what} {value!r} is not a number") from None
    if not amount.is_finite() or amount <= 0:
        raise ManualOrderRejected(f"{what} must be a positive number, not {value}")
    if amount != amount.quantize(quantum, rounding=ROUND_DOWN):
        raise ManualOrderRejected(f"{what} {value} has more decimal places than {quantum} allows")
    return amount


def _operator(user: Any) -> str | None:
    return user.get_username() if user is not None and hasattr(user, "get_username") else None


def _manual_buy_decision(amount: Decimal, position: Any, market: str, exchange: Exchange | None) -> risk.RiskDecision:
    limits = risk.market_limits(market, exchange)
    if amount < limits.min_total:
        return risk.RiskDecision.refuse(f"BUY {amount} KRW is below the minimum order ({limits.min_total} KRW)")
    needed = amount * (Decimal("1") + limits.fee_rate)
    if needed > limits.free_krw:
        return risk.RiskDecision.refuse(
            f"insufficient KRW: BUY {amount} KRW needs {needed:.0f} KRW with the fee, free balance {limits.free_krw:.0f}"
        )
    position_value = position.quantity * limits.price
    max_position = config_service.get_value("max_position_krw")
    if position_value + amount > max_position:
        return risk.RiskDecision.refuse(
            f"BUY {amount} KRW would take the position ({position_value:.0f} KRW now) above "
            f"max_position_krw {max_position}"
        )
    return risk.RiskDecision.market_buy(amount, f"manual BUY {amount} KRW at about {limits.price}")


def _manual_sell_decision(volume: Decimal, position: Any, market: str, exchange: Exchange | None) -> risk.RiskDecision:
    coin = market.split("-", 1)[1]
    if volume > position.quantity:
        return risk.RiskDecision.refuse(
            f"insufficient {coin}: SELL {volume} exceeds the recorded position {position.quantity}"
        )
    limits = risk.market_limits(market, exchange)
    if volume > limits.free_btc:
        return risk.RiskDecision.refuse(
            f"insufficient {coin}: SELL {volume} exceeds the free balance the exchange reports ({limits.free_btc})"
        )
    value = volume * limits.price
    if value < limits.min_total:
        return risk.RiskDecision.refuse(
            f"SELL {volume} is worth about {value:.0f} KRW, below the minimum order ({limits.min_total} KRW)"
        )
    return risk.RiskDecision.market_sell(volume, f"manual SELL {volume} at about {limits.price}")


def _refuse_while_a_sell_is_open(market: str) -> None:
    open_sell = Order.objects.filter(market=market, side=Order.Side.ASK, status__in=Order.OPEN_STATUSES).first()
    if open_sell is not None:
        raise ManualOrderRejected(
            f"a sell order is still open ({open_sell.identifier}, {open_sell.status}); wait for it to finish"
        )


def place_manual_order(
    side: str,
    *,
    krw_amount: Decimal | None = None,
    volume: Decimal | None = None,
    user: Any = None,
    exchange: Exchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Order:
    """An operator's market order (BUY by KRW amount, SELL by volume) through the same TX1/place/poll/TX2/TX3 path.

    Risk checks: ``trading_enabled`` must be true (``trading_paused`` does not block a deliberate
    operator order), the order value must reach the exchange minimum (5,000 KRW), the free balance
    must cover it (KRW including the fee; the coin limited to the recorded position), and a BUY
    must keep the position within ``max_position_krw``. A refusal raises ``ManualOrderRejected``
    with nothing written; an order the exchange refuses is returned FAILED with its reason.
    """
    order_side = MANUAL_SIDES.get(str(side).lower())
    if order_side is None:
        raise ManualOrderRejected(f"side must be buy or sell, not {side!r}")
    market = settings.TRADING_MARKET
    if order_side == Order.Side.BID:
        if krw_amount is None or volume is not None:
            raise ManualOrderRejected("a manual BUY needs a KRW amount (and no volume)")
        amount = _as_amount(krw_amount, "KRW amount", Decimal("1"))
    else:
        if volume is None or krw_amount is not None:
            raise ManualOrderRejected("a manual SELL needs a volume (and no KRW amount)")
        amount = _as_amount(volume, "volume", risk.VOLUME_QUANTUM)
    if not config_service.get_value("trading_enabled"):
        raise ManualOrderRejected("trading is disabled (trading_enabled=false)")
    position = position_service.get_position(market)
    if order_side == Order.Side.BID:
        decision = _manual_buy_decision(amount, position, market, exchange)
    else:
        _refuse_while_a_sell_is_open(market)
        decision = _manual_sell_decision(amount, position, market, exchange)
    if not decision.allowed:
        logger.info("manual_order_rejected", side=order_side, reason=decision.reason, operator=_operator(user))
        raise ManualOrderRejected(decision.reason)
    logger.info("manual_order_accepted", side=order_side, detail=decision.reason, operator=_operator(user))
    order, _ = create_order(decision, reason=Order.Reason.MANUAL, user=user)
    return run_order(order, exchange=exchange, sleep=sleep, clock=clock)


def close_position_manually(
    *,
    user: Any = None,
    exchange: Exchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Order:
    """Sell the whole position now for an operator (reason ``manual``); the close path's checks, refusals raised."""
    market = settings.TRADING_MARKET
    _refuse_while_a_sell_is_open(market)
    position = position_service.get_position(market)
    decision = risk.check_close(position, Order.Reason.MANUAL, exchange)
    if not decision.allowed:
        logger.info("manual_close_rejected", reason=decision.reason, operator=_operator(user))
        raise ManualOrderRejected(decision.reason)
    logger.info("manual_close_accepted", detail=decision.reason, operator=_operator(user))
    order, _ = create_order(decision, reason=Order.Reason.MANUAL, user=user)
    return run_order(order, exchange=exchange, sleep=sleep, clock=clock)


# ---------------------------------------------------------------- the steps


def create_order(
    decision: risk.RiskDecision, *, reason: str, signal: TradingSignal | None = None, user: Any = None
) -> tuple[Order, bool]:
    """TX1: the PENDING order row with its identifier, committed before the exchange hears of it.

    Returns ``(order, created)``; ``created`` is False when the signal already has a live order
    (the unique constraint refused the insert) and that order is returned instead.
    """
    try:
        with transaction.atomic():
            order = Order.objects.create(
                market=settings.TRADING_MARKET,
                side=decision.side,
                ord_type=decision.ord_type,
                price=decision.price,
                volume=decision.volume,
                reason=reason,
                signal=signal,
                user=user,
                status=Order.Status.PENDING,
            )
    except IntegrityError:
        if signal is None:
            raise
        existing = Order.objects.filter(signal=signal).exclude(status=Order.Status.FAILED).first()
        if existing is None:
            raise
        logger.info("signal_already_executed", signal_id=signal.pk, identifier=existing.identifier)
        return existing, False
    logger.info(
        "order_created",
        identifier=order.identifier,
        side=order.side,
        ord_type=order.ord_type,
        price=str(order.price) if order.price is not None else None,
        volume=str(order.volume) if order.volume is not None else None,
        reason=reason,
    )
    _crash_point("after_tx1")
    return order, True


def run_order(
    order: Order,
    *,
    exchange: Exchange | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Order:
    """Place, poll, record and apply one PENDING order. Every DB step is its own short transaction."""
    structlog.contextvars.bind_contextvars(identifier=order.identifier)
    try:
        poll_timeout = config_service.get_value("order_poll_timeout_s")
        exchange = exchange or _get_exchange()
        order, placed = place_with_replacement(order, exchange, sleep=sleep, clock=clock)
        if placed is None:
            order.refresh_from_db()
            return order
        _crash_point("after_place")
        order = record_exchange_order(order.pk, placed)
        # Always look the order up at least once: the placement answer carries no trades, so its
        # executed funds are not reliable even when it already says "done".
        final = poll_order(exchange, placed.uuid, poll_timeout, sleep=sleep, clock=clock)
        if final is not None:
            order = record_exchange_order(order.pk, final)
        if not order.is_final:
            logger.warning("order_still_open_after_poll", status=order.status, poll_timeout_s=poll_timeout)
            return order
        _crash_point("before_tx3")
        if finish_order(order):
            order.position_applied = True
        else:
            order.refresh_from_db()  # applied meanwhile by a reconciler
        return order
    finally:
        structlog.contextvars.unbind_contextvars("identifier")


def place_with_replacement(
    order: Order,
    exchange: Exchange,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Order, ExchangeOrder | None]:
    """Place ``order``; while the exchange proves a placement absent, re-place it as a new order row (bounded).

    Returns the last order row and the exchange's answer (None when nothing was placed: that row is
    FAILED, or PENDING with an unknown state, or another execution of the signal owns the live order).
    """
    started = clock()
    attempt = 1
    while True:
        try:
            return order, _send_order(order, exchange)
        except OrderNotPlacedError as error:
            last_attempt = attempt == MAX_PLACEMENTS
            wait = 0.0 if last_attempt else REPLACEMENT_WAITS[min(attempt, len(REPLACEMENT_WAITS)) - 1]
            over_budget = not last_attempt and clock() - started + wait > PLACEMENT_BUDGET_S
            will_retry = not (last_attempt or over_budget)
            failed = mark_failed(order.pk, f"never reached the exchange: {error}", notify=not will_retry)
            if failed is None:
                return order, None  # changed meanwhile (a reconciler found it): never place beside it
            if not will_retry:
                logger.error(
                    "order_not_placed_giving_up",
                    attempt=attempt,
                    max_attempts=MAX_PLACEMENTS,
                    reason="attempts exhausted" if last_attempt else "placement budget spent",
                    budget_s=PLACEMENT_BUDGET_S,
                    error=str(error)[:200],
                )
                return order, None
            release_connection()  # nothing checked out while waiting
            sleep(wait)
            replacement, created = create_order(
                _decision_of(order), reason=order.reason, signal=order.signal, user=order.user
            )
            if not created:
                return replacement, None  # the signal already has a live order elsewhere
            logger.warning(
                "order_replaced",
                attempt=attempt + 1,
                max_attempts=MAX_PLACEMENTS,
                previous_identifier=order.identifier,
                identifier=replacement.identifier,
                wait_s=wait,
            )
            structlog.contextvars.bind_contextvars(identifier=replacement.identifier)
            order = replacement
            attempt += 1


def _decision_of(order: Order) -> risk.RiskDecision:
    """The allowed decision an order row was created from (to re-place it under a new identifier)."""
    return risk.RiskDecision(
        allowed=True,
        reason=f"re-placement of {order.identifier}",
        side=order.side,
        ord_type=order.ord_type,
        price=order.price,
        volume=order.volume,
    )


def submit_order(order: Order, exchange: Exchange) -> ExchangeOrder | None:
    """Send the order once; on a definitive refusal mark it FAILED, on an ambiguous one leave it PENDING."""
    try:
        return _send_order(order, exchange)
    except OrderNotPlacedError as error:
        mark_failed(order.pk, f"never reached the exchange: {error}")
        return None


def _send_order(order: Order, exchange: Exchange) -> ExchangeOrder | None:
    """One placement. ``OrderNotPlacedError`` is raised to the caller (it may re-place); the rest is settled here."""
    release_connection()
    try:
        placed = exchange.place_order(
            market=order.market,
            side=order.side,
            ord_type=order.ord_type,
            identifier=order.identifier,
            price=order.price,
            volume=order.volume,
        )
    except OrderNotPlacedError:
        raise
    except OrderStateUnknownError as error:
        logger.error("order_state_unknown", error=str(error), action="left PENDING for reconciliation")
        _notify(f"Order {order.identifier}: state unknown after a failed placement; reconciliation will resolve it.")
        return None
    except ExchangeError as error:
        mark_failed(order.pk, f"refused by the exchange ({type(error).__name__}): {error}")
        return None
    logger.info("order_placed", uuid=placed.uuid, state=placed.state)
    return placed


def poll_order(
    exchange: Exchange,
    uuid: str,
    timeout_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval_s: float = POLL_INTERVAL_S,
) -> ExchangeOrder | None:
    """Ask for the order every ``interval_s`` until it is final or ``timeout_s`` passed; no DB connection held."""
    release_connection()
    deadline = clock() + timeout_s
    latest: ExchangeOrder | None = None
    while True:
        try:
            latest = exchange.get_order(uuid=uuid)
        except ExchangeError as error:
            logger.warning("order_poll_failed", uuid=uuid, error_type=type(error).__name__, error=str(error))
        _crash_point("during_poll")
        if (latest is not None and latest.is_final) or clock() >= deadline:
            return latest
        sleep(interval_s)


def record_exchange_order(order_id: int, remote: ExchangeOrder) -> Order:
    """TX2: copy the exchange's view (uuid, state, fills) onto the order row. The exchange is the truth."""
    status = STATUS_BY_STATE.get(remote.state)
    if status is None:
        raise ExchangeError(f"unknown order state {remote.state!r} from the exchange")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.position_applied and order.status != Order.Status.FAILED:
            return order  # final and applied: fills can no longer change
        if order.status == Order.Status.FAILED:
            # Marked "never reached the exchange" while the placement was still in flight; the exchange wins.
            logger.warning("failed_order_found_on_exchange", identifier=order.identifier, state=remote.state)
            order.position_applied = False
        order.uuid = remote.uuid
        order.exchange_state = remote.state
        order.status = status
        order.executed_volume = remote.executed_volume
        order.executed_funds = remote.executed_funds
        order.paid_fee = remote.paid_fee
        if order.submitted_at is None:
            order.submitted_at = timezone.now()
        if status in Order.FINAL_STATUSES and order.completed_at is None:
            order.completed_at = timezone.now()
        if order.error and status != Order.Status.FAILED:
            order.error = f"{order.error} (later found on the exchange: {remote.state})"
        order.save(
            update_fields=[
                "uuid",
                "exchange_state",
                "status",
                "executed_volume",
                "executed_funds",
                "paid_fee",
                "submitted_at",
                "completed_at",
                "error",
                "position_applied",
                "updated_at",
            ]
        )
    logger.info(
        "order_updated",
        identifier=order.identifier,
        uuid=order.uuid,
        status=order.status,
        exchange_state=order.exchange_state,
        executed_volume=str(order.executed_volume),
        executed_funds=str(order.executed_funds),
    )
    return order


def mark_failed(order_id: int, error: str, *, notify: bool = True) -> Order | None:
    """A PENDING order that provably never reached the exchange (or was refused) becomes FAILED.

    ``notify=False`` for an attempt about to be re-placed: Slack hears only of the final outcome.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != Order.Status.PENDING:
            return None
        order.status = Order.Status.FAILED
        order.error = error[:2000]
        order.completed_at = timezone.now()
        order.position_applied = True  # no fills, nothing to apply
        order.save()
    logger.error("order_failed", identifier=order.identifier, error=order.error)
    if notify:
        _notify(f"Order failed: {order.side} {order.market} ({order.identifier})", error=order.error)
    return order


def finish_order(order: Order) -> bool:
    """TX3 plus the after-effects of a final order: balance cache dropped, Slack told about fills."""
    applied = position_service.apply_order_to_position(order.pk)
    if applied:
        _invalidate_balances(order.market)
        if order.executed_volume > Decimal("0"):
            _notify(
                f"Order {order.status.lower()}: {order.get_side_display()} {order.executed_volume} {order.market}",
                identifier=order.identifier,
                funds_krw=str(order.executed_funds.quantize(Decimal("1"))),
                reason=order.reason,
            )
    return applied
