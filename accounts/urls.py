from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    # The names mozilla-django-oidc reverses (the callback is the redirect URI to
    # register at the provider: https://<host>/accounts/sso/callback/).
    path("sso/start/", views.sso_start, name="oidc_authentication_init"),
    path("sso/callback/", views.sso_callback, name="oidc_authentication_callback"),
]
