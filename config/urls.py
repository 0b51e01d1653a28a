from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from config.health import healthz
from generation import api
from metrics.views import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/generate", api.generate, name="api_generate"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico on pages that link no icon (the admin, JSON answers).
    # Lazy: the hashed static name is only known once the manifest is read.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"))),
    path("usage/", include("usage.urls")),
    path("v1/", include("generation.gateway.urls")),
    path("", include("generation.urls")),
]
