"""API views: validate the query, call a selector (reads) or a service (writes), serialize.

No business logic lives here. Query parameters go through a ``*Query``
serializer first; a ``ValidationError`` becomes a 400 with field messages.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from trading import selectors
from trading.api import serializers as api
from trading.services import cache_stats, trading_control
from trading.services import config as config_service

VALIDATION_ERROR = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description="Invalid parameter: `{field: [messages]}`."
)
NOT_FOUND = OpenApiResponse(response=api.ErrorSerializer, description="No such object.")
NOT_AUTHENTICATED = OpenApiResponse(response=api.ErrorSerializer, description="Not authenticated.")
FORBIDDEN = OpenApiResponse(response=api.ErrorSerializer, description="Staff only.")
THROTTLED = OpenApiResponse(response=api.ErrorSerializer, description="Too many writes (30/min).")
ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Row id.")
KEY_PARAMETER = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Setting key.")


def read_responses(serializer: Any, *, not_found: bool = False, validated: bool = True) -> dict[int, Any]:
    responses: dict[int, Any] = {200: serializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN}
    if validated:
        responses[400] = VALIDATION_ERROR
    if not_found:
        responses[404] = NOT_FOUND
    return responses


def write_responses(serializer: Any, *, validated: bool = True, not_found: bool = False) -> dict[int, Any]:
    responses: dict[int, Any] = {200: serializer}
    if validated:
        responses[400] = VALIDATION_ERROR
    responses |= {401: NOT_AUTHENTICATED, 403: FORBIDDEN}
    if not_found:
        responses[404] = NOT_FOUND
    responses[429] = THROTTLED
    return responses


def validated_query(request: Request, serializer_class: type[drf_serializers.Serializer]) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def found(row: Any, message: str) -> Any:
    """``row``, or a 404 with ``message`` when the selector found nothing."""
    if row is None:
        raise NotFound(message)
    return row


def page_arguments(query: dict[str, Any]) -> dict[str, Any]:
    """The date-range and cursor arguments every ``*_page`` selector takes, from a validated query."""
    return {
        "since": query.get("since"),
        "until": query.get("until"),
        "cursor": query.get("cursor"),
        "limit": query["limit"],
    }


def page_response(page: selectors.Page, results: Any, **fields: Any) -> Response:
    """One keyset page: any leading ``fields``, then ``next_cursor`` and ``results``."""
    return Response({**fields, "next_cursor": api.encode_cursor(page.next_cursor), "results": results})


class SharedScopedRateThrottle(ScopedRateThrottle):
    """Counts in the ``shared`` cache so the limit holds across gunicorn workers, not per worker."""

    cache = caches["shared"]


class ReadView(APIView):
    permission_classes = [IsAuthenticated]


class WriteView(APIView):
    """Staff-only writes, throttled per user under the ``writes`` scope; JSON bodies only.

    Form parsers would read a malformed body as "no fields" and apply defaults; JSON-only
    turns any other body into a 400 (or 415 for another content type), as the schema says.
    """

    parser_classes = [JSONParser]
    permission_classes = [IsAdminUser]
    throttle_classes = [SharedScopedRateThrottle]
    throttle_scope = "writes"


# --- market -------------------------------------------------------------------------------------


class MarketLatestView(ReadView):
    @extend_schema(
        tags=["market"],
        summary="Latest ticker sample",
        responses=read_responses(api.TickerSerializer, not_found=True, validated=False),
    )
    def get(self, request: Request) -> Response:
        latest = found(selectors.latest_market_data(settings.TRADING_MARKET), "No market data yet.")
        return Response(api.TickerSerializer(latest).data)


class MarketHistoryView(ReadView):
    @extend_schema(
        tags=["market"],
        summary="Price history, newest first (keyset pagination on timestamp)",
        parameters=[api.MarketHistoryQuery],
        responses=read_responses(api.HistoryPageSerializer),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(request, api.MarketHistoryQuery)
        since = timezone.now() - dt.timedelta(hours=query["hours"])
        page = selectors.market_history(
            settings.TRADING_MARKET, since=since, cursor=query.get("cursor"), limit=query["limit"]
        )
        # Rows are plain dicts from .values(); rendering them directly keeps a 100-row page cheap.
        results = [
            {
                "id": row["id"],
                "timestamp": api.time_text(row["timestamp"]),
                "trade_price": api.decimal_text(row["trade_price"]),
                "opening_price": api.decimal_text(row["opening_price"]),
                "high_price": api.decimal_text(row["high_price"]),
                "low_price": api.decimal_text(row["low_price"]),
                "trade_volume": api.decimal_text(row["trade_volume"]),
                "change_rate": api.decimal_text(row["change_rate"]),
            }
            for row in page.rows
        ]
        return page_response(page, results, symbol=settings.TRADING_MARKET, hours=query["hours"])


class MarketStatsView(ReadView):
    @extend_schema(
        tags=["market"],
        summary="High, low, first, last, average and change % over a window (aggregated in SQL)",
        parameters=[api.HoursQuery],
        responses=read_responses(api.MarketStatsSerializer),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(request, api.HoursQuery)
        until = timezone.now()
        since = until - dt.timedelta(hours=query["hours"])
        stats = selectors.market_stats(settings.TRADING_MARKET, since=since, until=until)
        return Response(api.MarketStatsSerializer({**stats, "hours": query["hours"]}).data)


# --- signals ------------------------------------------------------------------------------------


class SignalListView(ReadView):
    @extend_schema(
        tags=["signals"],
        operation_id="v1_signals_list",
        summary="Trading signals with token usage, newest first",
        parameters=[api.SignalListQuery],
        responses=read_responses(api.SignalPageSerializer),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(request, api.SignalListQuery)
        page = selectors.signal_page(signal_type=query.get("signal_type"), **page_arguments(query))
        return page_response(page, api.SignalSerializer(page.rows, many=True).data)


class SignalDetailView(ReadView):
    @extend_schema(
        tags=["signals"],
        operation_id="v1_signals_retrieve",
        summary="One trading signal",
        parameters=[ID_PARAMETER],
        responses=read_responses(api.SignalSerializer, not_found=True, validated=False),
    )
    def get(self, request: Request, id: int) -> Response:
        signal = found(selectors.signal_detail(id), "No such signal.")
        return Response(api.SignalSerializer(signal).data)


# --- orders -------------------------------------------------------------------------------------


class OrderListView(ReadView):
    @extend_schema(
        tags=["orders"],
        operation_id="v1_orders_list",
        summary="Orders with their signal summary, newest first",
        parameters=[api.OrderListQuery],
        responses=read_responses(api.OrderPageSerializer),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(request, api.OrderListQuery)
        page = selectors.order_page(status=query.get("status"), **page_arguments(query))
        # Same shape as OrderSerializer (the documented schema), rendered without its per-field overhead.
        return page_response(page, [api.order_representation(order) for order in page.rows])


class OrderDetailView(ReadView):
    @extend_schema(
        tags=["orders"],
        operation_id="v1_orders_retrieve",
        summary="One order with its signal summary",
        parameters=[ID_PARAMETER],
        responses=read_responses(api.OrderSerializer, not_found=True, validated=False),
    )
    def get(self, request: Request, id: int) -> Response:
        order = found(selectors.order_detail(id), "No such order.")
        return Response(api.OrderSerializer(order).data)


# --- position / dashboard ---------------------------------------------------------------------------


class PositionView(ReadView):
    @extend_schema(
        tags=["position"],
        summary="Position, latest price and unrealized P&L",
        responses=read_responses(api.PositionSerializer, validated=False),
    )
    def get(self, request: Request) -> Response:
        return Response(api.PositionSerializer(selectors.position_summary(settings.TRADING_MARKET)).data)


class DashboardView(ReadView):
    @extend_schema(
        tags=["position"],
        summary="Dashboard: position, P&L, today's signals and orders, trading switch",
        responses=read_responses(api.DashboardSerializer, validated=False),
    )
    def get(self, request: Request) -> Response:
        return Response(api.DashboardSerializer(selectors.dashboard_summary(settings.TRADING_MARKET)).data)


# --- AI usage -----------------------------------------------------------------------------------


class AIUsageView(ReadView):
    @extend_schema(
        tags=["ai"],
        summary="AI tokens in/out and estimated KRW cost per UTC day",
        parameters=[api.AIUsageQuery],
        responses=read_responses(api.AIUsageSerializer),
    )
    def get(self, request: Request) -> Response:
        query = validated_query(request, api.AIUsageQuery)
        return Response(api.AIUsageSerializer(selectors.ai_usage_by_day(query["days"])).data)


# --- configuration ------------------------------------------------------------------------------------


class ConfigListView(ReadView):
    @extend_schema(
        tags=["config"],
        summary="Every operator setting with its typed value",
        responses=read_responses(api.ConfigEntrySerializer(many=True), validated=False),
    )
    def get(self, request: Request) -> Response:
        return Response(api.ConfigEntrySerializer(selectors.config_entries(), many=True).data)


CONFIG_WRITE_SCHEMA = extend_schema(
    tags=["config"],
    summary="Set a setting's value (staff)",
    parameters=[KEY_PARAMETER],
    request=api.ConfigValueSerializer,
    responses=write_responses(api.ConfigEntrySerializer, not_found=True),
)


class ConfigDetailView(APIView):
    """GET for any authenticated user; PUT/PATCH ``value`` for staff, through the config service."""

    throttle_scope = "writes"
    parser_classes = [JSONParser]

    def get_permissions(self) -> list[Any]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [IsAdminUser()]

    def get_throttles(self) -> list[Any]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return []
        return [SharedScopedRateThrottle()]

    @extend_schema(
        tags=["config"],
        summary="One operator setting",
        parameters=[KEY_PARAMETER],
        responses=read_responses(api.ConfigEntrySerializer, not_found=True, validated=False),
    )
    def get(self, request: Request, key: str) -> Response:
        entry = found(selectors.config_entry(key), "Unknown configuration key.")
        return Response(api.ConfigEntrySerializer(entry).data)

    @CONFIG_WRITE_SCHEMA
    def put(self, request: Request, key: str) -> Response:
        return self._write(request, key)

    @CONFIG_WRITE_SCHEMA
    def patch(self, request: Request, key: str) -> Response:
        return self._write(request, key)

    def _write(self, request: Request, key: str) -> Response:
        found(selectors.config_entry(key), "Unknown configuration key.")
        body = api.ConfigValueSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            config_service.set_value(key, body.validated_data["value"])
        except DjangoValidationError as error:
            raise drf_serializers.ValidationError({"value": error.messages}) from None
        return Response(api.ConfigEntrySerializer(selectors.config_entry(key)).data)


class EnableTradingView(WriteView):
    @extend_schema(
        tags=["config"],
        summary="Enable trading and lift any pause (staff)",
        request=None,
        responses=write_responses(api.TradingStateSerializer, validated=False),
    )
    def post(self, request: Request) -> Response:
        state = trading_control.enable_trading(actor=request.user.get_username())
        return Response(api.TradingStateSerializer(state).data)


class DisableTradingView(WriteView):
    @extend_schema(
        tags=["config"],
        summary="Disable trading (staff)",
        request=api.DisableTradingSerializer,
        responses=write_responses(api.TradingStateSerializer),
    )
    def post(self, request: Request) -> Response:
        body = api.DisableTradingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            state = trading_control.disable_trading(
                reason=body.validated_data["reason"], actor=request.user.get_username()
            )
        except DjangoValidationError as error:
            raise drf_serializers.ValidationError({"reason": error.messages}) from None
        return Response(api.TradingStateSerializer(state).data)


# --- system -----------------------------------------------------------------------------------------


class CacheStatsView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        tags=["system"],
        summary="Cache hit/miss counters per namespace (staff)",
        responses={200: OpenApiTypes.OBJECT, 401: NOT_AUTHENTICATED, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return Response(cache_stats.snapshot())


class VersionView(ReadView):
    @extend_schema(
        tags=["system"],
        summary="Application version, Django version, exchange mode and signal provider",
        responses=read_responses(api.VersionSerializer, validated=False),
    )
    def get(self, request: Request) -> Response:
        return Response(
            api.VersionSerializer(
                {
                    "version": settings.APP_VERSION,
                    "django": django.get_version(),
                    "exchange": settings.EXCHANGE,
                    "signal_provider": "gemini" if settings.GEMINI_API_KEY else "rule_based",
                    "market": settings.TRADING_MARKET,
                }
            ).data
        )
