"""django-axes' view of single sign-on (AXES_WHITELIST_CALLABLE)."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse


def is_sso_callback(request: HttpRequest, credentials: object = None) -> bool:
    """True for the OpenID Connect callback: axes neither counts nor locks it.

    It carries no username (axes would count failures per address alone, so a handful
    of forged callbacks would lock the whole office out of SSO), and the password, if
    any, was checked and throttled by the identity provider. Failures still send
    `user_login_failed` for anyone else who listens.
    """
    return request.path == reverse("oidc_authentication_callback")
