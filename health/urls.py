from django.urls import path

from health import views

urlpatterns = [
    path("", views.liveness, name="health-liveness"),
    path("detail", views.DetailedHealthView.as_view(), name="health-detail"),
]
