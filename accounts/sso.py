"""Single sign-on settings as mozilla-django-oidc reads them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import lazy

from accounts import discovery


def sso_enabled() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_RP_CLIENT_ID)


def passwords_for_superusers_only() -> bool:
    return str(settings.PASSWORD_SIGN_IN).strip().lower() == "superusers"


def read_setting(attr: str, *default: Any) -> Any:
    """What the library's `get_settings` returns; endpoints are resolved when used.

    The library reads every endpoint when it builds its backend, which Django does on
    each request of a signed-in user: a lazy URL keeps those requests off the network,
    and a provider that is down only ever fails an SSO sign-in.
    """
    if attr in discovery.ENDPOINTS:
        return lazy(discovery.endpoint, str)(attr)
    if attr == "OIDC_STORE_ID_TOKEN":
        # Logging out at the provider sends the ID token back to it as id_token_hint.
        return bool(settings.OIDC_LOGOUT_AT_PROVIDER)
    if hasattr(settings, attr):
        return getattr(settings, attr)
    if default:
        return default[0]
    raise ImproperlyConfigured(f"Setting {attr} not found")
