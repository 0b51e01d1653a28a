"""The project's URLs plus the usage app's, until config/urls.py includes them."""

from __future__ import annotations

from django.urls import include, path

from config.urls import urlpatterns as project_patterns

urlpatterns = [
    *[p for p in project_patterns if getattr(p, "namespace", None) != "usage"],
    path("usage/", include("usage.urls")),
]
