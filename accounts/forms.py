"""Sign-in forms that follow PASSWORD_SIGN_IN (ours and the admin's)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User

from accounts.sso import passwords_for_superusers_only

PASSWORD_SIGN_IN_OFF = (
    "Password sign-in is turned off for your account: use “Sign in with SSO” instead."
)


def check_password_sign_in_allowed(user: User) -> None:
    # Checked once the password was found correct, so the message tells nothing to
    # someone who does not know it.
    if passwords_for_superusers_only() and not getattr(user, "is_superuser", False):
        raise forms.ValidationError(PASSWORD_SIGN_IN_OFF, code="password_sign_in_off")


class PasswordSignInForm(AuthenticationForm):
    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        check_password_sign_in_allowed(user)


class AdminPasswordSignInForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        check_password_sign_in_allowed(user)
