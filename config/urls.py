from django.contrib import admin
from django.urls import include, path

from health.views import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", include("health.urls")),
    path("metrics", metrics, name="metrics"),
    path("api/", include("trading.api.urls")),
]

# JSON under /api/, Django's HTML pages elsewhere (only used when DEBUG is off).
handler400 = "trading.api.errors.bad_request"
handler403 = "trading.api.errors.permission_denied"
handler404 = "trading.api.errors.page_not_found"
handler500 = "trading.api.errors.server_error"
