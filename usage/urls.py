from __future__ import annotations

from django.urls import path

from usage import views

app_name = "usage"
urlpatterns = [
    path("", views.my_usage, name="mine"),
]
