from __future__ import annotations

from django.contrib import admin

from accounts.models import ManagedGroup, SsoIdentity


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin[SsoIdentity]):
    """Who signs in through the provider. Staff may link an existing account by hand
    (user, the issuer, the provider's `sub`) before that person's first SSO sign-in."""

    list_display = ["user", "subject", "issuer", "created_at"]
    search_fields = ["user__username", "subject"]
    raw_id_fields = ["user"]


@admin.register(ManagedGroup)
class ManagedGroupAdmin(admin.ModelAdmin[ManagedGroup]):
    """Groups whose membership follows the groups claim. Deleting one here hands it back
    to the admin until a claim names it again."""

    list_display = ["group", "created_at"]
    search_fields = ["group__name"]

    def has_add_permission(self, request: object) -> bool:
        return False
