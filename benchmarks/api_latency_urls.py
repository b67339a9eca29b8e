"""Bench-only URLconf: the real API plus FLOOR views.

A floor view runs the same single query as the endpoint it shadows and returns
a ``JsonResponse`` — no DRF, no authentication, no serializer. The endpoint's
overhead is judged against it, since absolute times on a shared machine swing.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.utils import timezone

from trading.models import MarketData
from trading.selectors import HISTORY_FIELDS


def floor_history(request: HttpRequest) -> JsonResponse:
    since = timezone.now() - dt.timedelta(hours=24)
    rows = list(
        MarketData.objects.filter(symbol=settings.TRADING_MARKET, timestamp__gte=since)
        .order_by("-timestamp", "-id")
        .values(*HISTORY_FIELDS)[:101]
    )[:100]
    return JsonResponse({"results": rows}, safe=False)


def floor_stats(request: HttpRequest) -> JsonResponse:
    from trading.selectors import market_stats_queryset

    until = timezone.now()
    rows = list(market_stats_queryset(settings.TRADING_MARKET, since=until - dt.timedelta(hours=24), until=until))
    return JsonResponse({"results": rows}, safe=False)


urlpatterns = [
    path("floor/history", floor_history),
    path("floor/stats", floor_stats),
    path("", include("config.urls")),
]
