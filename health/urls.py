from django.urls import path

from health import views

urlpatterns = [
    path("", views.liveness, name="health-liveness"),
]
