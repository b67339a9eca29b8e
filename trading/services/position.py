"""The position in the traded market, and how a final order's fills change it (TX3).

Position math (all ``Decimal``):

* buy:  ``new_avg = (q * avg + funds + fee) / (q + volume)`` — the fee is part of
  the cost basis, so ``average_buy_price`` is the break-even price and the
  realized P&L below is net of both fees. (Upbit's own ``avg_buy_price``
  excludes fees; ours deliberately does not.)
* sell: ``quantity -= volume``; ``realized_pnl += (funds - fee) - volume * avg``.
  The average is unchanged by a sale and reset to 0 when the position is empty.
  A sale larger than the recorded quantity (coins bought outside this system)
  empties the position and is priced at the recorded average.

Applying an order is idempotent: the order row is locked, ``position_applied``
is checked and set in the same transaction as the position update, and the
position row is locked with ``select_for_update``; two reconcilers (or a
reconciler and the executing process) can never apply the same fills twice.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import structlog
from django.conf import settings
from django.db import transaction

from trading.models import Order, Position

logger = structlog.get_logger(__name__)

ZERO = Decimal("0")
PRICE_QUANTUM = Decimal("0.00000001")  # the model's 8 decimal places


def get_position(symbol: str | None = None) -> Position:
    """The position row of ``symbol`` (created empty on first use). One query when it exists."""
    symbol = symbol or settings.TRADING_MARKET
    position = Position.objects.filter(symbol=symbol).first()
    if position is None:
        position, _ = Position.objects.get_or_create(symbol=symbol)
    return position


def apply_fill(position: Position, *, side: str, volume: Decimal, funds: Decimal, fee: Decimal) -> Decimal:
    """Change ``position`` in memory for one fill; returns the realized P&L of this fill (0 for a buy)."""
    if volume <= ZERO:
        return ZERO
    quantity = position.quantity
    average = position.average_buy_price
    if side == Order.Side.BID:
        new_quantity = quantity + volume
        position.average_buy_price = ((quantity * average + funds + fee) / new_quantity).quantize(
            PRICE_QUANTUM, rounding=ROUND_HALF_EVEN
        )
        position.quantity = new_quantity
        return ZERO
    realized = ((funds - fee) - volume * average).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)
    if volume > quantity:
        logger.warning(
            "sell_exceeds_position", symbol=position.symbol, sold_volume=str(volume), recorded_quantity=str(quantity)
        )
    position.quantity = max(quantity - volume, ZERO)
    position.realized_pnl_krw += realized
    if position.quantity == ZERO:
        position.average_buy_price = ZERO
    return realized


def apply_order_to_position(order_id: int) -> bool:
    """TX3: apply a final order's fills to the position, exactly once.

    Returns True when this call applied the order, False when there was
    nothing to do (already applied, or the order is not final yet).
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.position_applied or order.status not in Order.FINAL_STATUSES:
            return False
        position = Position.objects.select_for_update().filter(symbol=order.market).first()
        if position is None:  # first trade ever: create the row, then lock it
            Position.objects.get_or_create(symbol=order.market)
            position = Position.objects.select_for_update().get(symbol=order.market)
        realized = apply_fill(
            position,
            side=order.side,
            volume=order.executed_volume,
            funds=order.executed_funds,
            fee=order.paid_fee,
        )
        if order.executed_volume > ZERO:
            position.save(update_fields=["quantity", "average_buy_price", "realized_pnl_krw", "updated_at"])
        order.position_applied = True
        order.save(update_fields=["position_applied", "updated_at"])
    logger.info(
        "position_updated",
        identifier=order.identifier,
        side=order.side,
        executed_volume=str(order.executed_volume),
        quantity=str(position.quantity),
        average_buy_price=str(position.average_buy_price),
        realized_pnl_krw=str(realized),
    )
    return True
