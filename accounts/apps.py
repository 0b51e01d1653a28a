from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and single sign-on"

    def ready(self) -> None:
        from django.contrib import admin

        from accounts import checks  # noqa: F401  (registers the checks)
        from accounts.forms import AdminPasswordSignInForm

        # The admin's sign-in page follows PASSWORD_SIGN_IN as ours does.
        admin.site.login_form = AdminPasswordSignInForm
