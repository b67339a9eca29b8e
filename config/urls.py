from django.contrib import admin
from django.urls import include, path

from health.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", include("health.urls")),
    path("metrics", metrics, name="metrics"),
    path("api/", include("trading.api.urls")),
]
