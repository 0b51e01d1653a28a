from __future__ import annotations

from django import template
from django.urls import reverse

from accounts.sso import passwords_for_superusers_only, sso_enabled

register = template.Library()


@register.simple_tag
def sso_sign_in_url() -> str:
    """Where "Sign in with SSO" goes, or "" when single sign-on is not configured."""
    return reverse("oidc_authentication_init") if sso_enabled() else ""


@register.simple_tag
def password_sign_in_for_superusers_only() -> bool:
    return passwords_for_superusers_only()
