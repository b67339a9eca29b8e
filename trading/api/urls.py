from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from trading.api import views

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("v1/market/latest", views.MarketLatestView.as_view(), name="market-latest"),
    path("v1/market/history", views.MarketHistoryView.as_view(), name="market-history"),
    path("v1/market/stats", views.MarketStatsView.as_view(), name="market-stats"),
    path("v1/signals", views.SignalListView.as_view(), name="signal-list"),
    path("v1/signals/<int:id>", views.SignalDetailView.as_view(), name="signal-detail"),
    path("v1/orders", views.OrderListView.as_view(), name="order-list"),
    path("v1/orders/<int:id>", views.OrderDetailView.as_view(), name="order-detail"),
    path("v1/position", views.PositionView.as_view(), name="position"),
    path("v1/dashboard", views.DashboardView.as_view(), name="dashboard"),
    path("v1/ai/usage", views.AIUsageView.as_view(), name="ai-usage"),
    path("v1/config", views.ConfigListView.as_view(), name="config-list"),
    path("v1/config/<str:key>", views.ConfigDetailView.as_view(), name="config-detail"),
    path("v1/trading/enable", views.EnableTradingView.as_view(), name="trading-enable"),
    path("v1/trading/disable", views.DisableTradingView.as_view(), name="trading-disable"),
    path("v1/system/cache-stats", views.CacheStatsView.as_view(), name="cache-stats"),
    path("v1/system/version", views.VersionView.as_view(), name="version"),
]
