"""`manage.py check` (and the release step's `check --deploy`) on the sign-in settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from accounts.sso import passwords_for_superusers_only, sso_enabled

PASSWORD_SIGN_IN_VALUES = {"everyone", "superusers"}


@register()
def check_sign_in_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if str(settings.PASSWORD_SIGN_IN).strip().lower() not in PASSWORD_SIGN_IN_VALUES:
        found.append(
            Error(
                f"PASSWORD_SIGN_IN is {settings.PASSWORD_SIGN_IN!r}",
                hint="Use 'everyone' or 'superusers'.",
                id="accounts.E001",
            )
        )
    if passwords_for_superusers_only() and not sso_enabled():
        found.append(
            Warning(
                "PASSWORD_SIGN_IN=superusers without single sign-on: only superusers can sign in",
                hint="Set OIDC_ISSUER and OIDC_CLIENT_ID, or PASSWORD_SIGN_IN=everyone.",
                id="accounts.W001",
            )
        )
    if bool(settings.OIDC_ISSUER) != bool(settings.OIDC_RP_CLIENT_ID):
        found.append(
            Warning(
                "Single sign-on is off: only one of OIDC_ISSUER and OIDC_CLIENT_ID is set",
                id="accounts.W002",
            )
        )
    if sso_enabled() and not settings.OIDC_RP_CLIENT_SECRET:
        found.append(
            Warning(
                "OIDC_CLIENT_SECRET is empty: the provider will refuse the token requests",
                id="accounts.W003",
            )
        )
    return found
