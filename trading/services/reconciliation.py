"""Reconcile every non-final order with the exchange, by ``identifier`` (run by sync_pending_orders and at startup).

* PENDING older than ``PENDING_GRACE`` (so a placement still in flight in another
  process is not raced) → ``get_order(identifier=...)``: found → adopt its uuid,
  state and fills; ``OrderNotFoundError`` → FAILED ("never reached the
  exchange"). Upbit never accepts an identifier twice, so nothing is re-sent.
* SUBMITTED → ``get_order(uuid=...)`` (identifier when the uuid is missing):
  state and fills updated.
* Every final order whose fills are not yet on the position (``position_applied``
  false) → TX3. That step is idempotent (row locks + ``position_applied``), so two
  reconcilers running at once cannot apply fills twice.

Each order is handled in its own short transactions; the DB connection is
given back before every exchange call. An error on one order is logged and
counted, and the others are still reconciled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.utils import timezone

from trading.clients.exchange.base import Exchange
from trading.clients.exchange.errors import ExchangeError, OrderNotFoundError
from trading.models import Order
from trading.services import order_execution

logger = structlog.get_logger(__name__)

# Placement with the client's ambiguity handling (timeout, lookup by identifier with bounded
# retries) finishes well within this; a younger PENDING order may still be in flight elsewhere.
PENDING_GRACE = timedelta(seconds=60)


@dataclass
class ReconcileSummary:
    checked: int = 0  # non-final orders looked at
    adopted: int = 0  # PENDING orders found on the exchange by identifier
    failed_never_placed: int = 0  # PENDING orders the exchange never received
    updated: int = 0  # orders whose state or fills changed
    still_open: int = 0  # orders still open on the exchange (or PENDING within the grace period)
    positions_applied: int = 0  # final orders applied to the position
    errors: int = 0  # orders that could not be reconciled this time

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def reconcile_pending_orders(
    *,
    exchange: Exchange | None = None,
    now: datetime | None = None,
    pending_grace: timedelta = PENDING_GRACE,
) -> ReconcileSummary:
    """Bring every non-final order (and every unapplied final one) in line with the exchange."""
    summary = ReconcileSummary()
    now = now or timezone.now()
    open_ids = list(
        Order.objects.filter(status__in=Order.OPEN_STATUSES).order_by("created_at").values_list("pk", flat=True)
    )
    if open_ids:
        exchange = exchange or order_execution._get_exchange()
    for order_id in open_ids:
        summary.checked += 1
        try:
            _reconcile_one(order_id, exchange, now - pending_grace, summary)
        except Exception:
            summary.errors += 1
            logger.exception("reconcile_order_failed", order_id=order_id)
    unapplied = list(
        Order.objects.filter(status__in=Order.FINAL_STATUSES, position_applied=False)
        .order_by("completed_at", "created_at")
        .values_list("pk", flat=True)
    )
    for order_id in unapplied:
        try:
            order = Order.objects.get(pk=order_id)
            if order_execution.finish_order(order):
                summary.positions_applied += 1
        except Exception:
            summary.errors += 1
            logger.exception("reconcile_position_failed", order_id=order_id)
    logger.info("orders_reconciled", **summary.as_dict())
    return summary


def _reconcile_one(order_id: int, exchange: Exchange, pending_before: datetime, summary: ReconcileSummary) -> None:
    order = Order.objects.get(pk=order_id)
    if order.is_final:
        return
    log = logger.bind(identifier=order.identifier, status=order.status)
    if order.status == Order.Status.PENDING and order.created_at > pending_before:
        summary.still_open += 1
        log.info("reconcile_pending_too_recent")
        return
    order_execution.release_connection()
    try:
        key = {"uuid": order.uuid} if order.uuid else {"identifier": order.identifier}
        remote = exchange.get_order(**key)
    except OrderNotFoundError:
        if order.status == Order.Status.PENDING:
            if order_execution.mark_failed(order.pk, "never reached the exchange (not found by identifier)"):
                summary.failed_never_placed += 1
            return
        summary.errors += 1
        log.error("submitted_order_not_found_on_exchange", uuid=order.uuid)
        return
    except ExchangeError as error:
        summary.errors += 1
        log.warning("reconcile_lookup_failed", error_type=type(error).__name__, error=str(error))
        return
    changed = (
        remote.state != order.exchange_state
        or remote.executed_volume != order.executed_volume
        or remote.uuid != order.uuid
    )
    updated = order_execution.record_exchange_order(order.pk, remote)
    if order.status == Order.Status.PENDING:
        summary.adopted += 1
        log.info("pending_order_adopted", uuid=remote.uuid, state=remote.state)
    elif changed:
        summary.updated += 1
    if not updated.is_final:
        summary.still_open += 1
