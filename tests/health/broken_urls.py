"""URLconf for the middleware tests: a view that crashes, under a parameterised route."""

from django.urls import include, path


def crash(request, pk: int):
    raise RuntimeError("view crashed")


urlpatterns = [
    path("boom/<int:pk>/", crash),
    path("", include("config.urls")),
]
