"""``manage.py place_order buy --krw 10000 | sell --volume 0.0001 | close``: an operator's immediate market order.

The order goes through the same path as a signal's (``order_execution``); a refusal by the
risk checks or the exchange is printed and the command exits non-zero.
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.clients.exchange.errors import ExchangeError
from trading.models import Order


def decimal_argument(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


class Command(BaseCommand):
    help = "Place a manual market order now: buy --krw AMOUNT, sell --volume BTC, or close (sell the whole position)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["buy", "sell", "close"])
        parser.add_argument("--krw", type=decimal_argument, help="KRW to spend (buy), whole KRW, at least 5000.")
        parser.add_argument("--volume", type=decimal_argument, help="BTC to sell (sell), at most 8 decimal places.")
        parser.add_argument("--user", help="Username recorded on the order (optional).")

    def handle(self, *args: Any, **options: Any) -> None:
        from trading.services import position as position_service
        from trading.services.order_execution import ManualOrderRejected, close_position_manually, place_manual_order

        action, krw, volume = options["action"], options["krw"], options["volume"]
        user = self._user(options["user"])
        if action == "buy" and (krw is None or volume is not None):
            raise CommandError("buy needs --krw AMOUNT (and no --volume)")
        if action == "sell" and (volume is None or krw is not None):
            raise CommandError("sell needs --volume BTC (and no --krw)")
        if action == "close" and (krw is not None or volume is not None):
            raise CommandError("close takes neither --krw nor --volume: it sells the whole position")
        try:
            if action == "close":
                order = close_position_manually(user=user)
            else:
                order = place_manual_order(action, krw_amount=krw, volume=volume, user=user)
        except ManualOrderRejected as error:
            raise CommandError(f"order rejected, nothing placed: {error}") from error
        except ExchangeError as error:
            raise CommandError(f"exchange error: {type(error).__name__}: {error}") from error
        self.stdout.write(
            f"Order {order.identifier}: {order.status} ({order.get_side_display()}, {order.ord_type}), "
            f"executed {order.executed_volume} for {order.executed_funds} KRW, fee {order.paid_fee} KRW."
        )
        if order.status == Order.Status.FAILED:
            raise CommandError(f"order {order.identifier} failed: {order.error}")
        if not order.is_final:
            self.stdout.write("The order is still open; sync_pending_orders will record its fills.")
        position = position_service.get_position(order.market)
        self.stdout.write(
            f"Position {position.symbol}: {position.quantity} at average {position.average_buy_price} KRW, "
            f"realized PnL {position.realized_pnl_krw} KRW."
        )

    @staticmethod
    def _user(username: str | None) -> Any:
        if not username:
            return None
        model = get_user_model()
        try:
            return model.objects.get(**{model.USERNAME_FIELD: username})
        except model.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
