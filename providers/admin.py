from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from providers.connection import test_connection
from providers.forms import ProviderAdminForm
from providers.models import Provider
from providers.models_list import cached_models

if TYPE_CHECKING:
    from config.request_types import AuthenticatedHttpRequest


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin[Provider]):
    form = ProviderAdminForm
    list_display = ["name", "kind", "base_url", "masked_key", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "base_url", "default_model"]
    readonly_fields = [
        "masked_key",
        "available_models",
        "created_at",
        "updated_at",
        "deactivated_at",
        "deactivated_by",
    ]
    actions = ["test_connection", "deactivate", "reactivate"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "base_url", "default_model", "is_active"]}),
        ("API key", {"fields": ["masked_key", "new_api_key", "clear_api_key"]}),
        ("Models", {"fields": ["available_models"]}),
        ("Prompt cache", {"fields": ["prompt_caching"]}),
        (
            "Response cache",
            {
                "fields": ["cache_responses", "cache_ttl_seconds"],
                "description": (
                    "Exact-match answers for temperature 0, served at zero cost to the user"
                    " who asked before (never to another: it would tell them what was asked)."
                ),
            },
        ),
        ("History", {"fields": ["created_at", "updated_at", "deactivated_at", "deactivated_by"]}),
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Provider | None = None) -> bool:
        if obj is not None and obj.is_referenced():
            return False  # deactivate it instead: its history must keep pointing at it
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Bulk delete would bypass the per-provider check above.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Models the provider lists")
    def available_models(self, obj: Provider) -> str:
        # Only the cached list: rendering a form must not wait on the provider.
        models = cached_models(obj) if obj.pk else None
        if models is None:
            return "Not fetched yet: run the “Test connection” action to fetch the list."
        return ", ".join(models) or "The provider lists no models."

    @admin.display(description="API key")
    def masked_key(self, obj: Provider) -> str:
        if obj.api_key is None:
            return "No key"
        return obj.api_key_hint or "—"

    def save_model(
        self, request: HttpRequest, obj: Provider, form: ProviderAdminForm, change: bool
    ) -> None:
        # Unticking "active" in the form is a deactivation too: record who and when.
        if change and "is_active" in form.changed_data:
            if obj.is_active:
                obj.deactivated_at = obj.deactivated_by = None
            else:
                assert request.user.is_authenticated  # the admin serves logged-in staff only
                obj.deactivated_at, obj.deactivated_by = timezone.now(), request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Deactivate selected providers")
    def deactivate(self, request: AuthenticatedHttpRequest, queryset: QuerySet[Provider]) -> None:
        providers = list(queryset.filter(is_active=True))
        for provider in providers:
            provider.deactivate(by=request.user)
        self.message_user(request, f"Deactivated {len(providers)} provider(s).", messages.SUCCESS)

    @admin.action(description="Reactivate selected providers")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        providers = list(queryset.filter(is_active=False))
        for provider in providers:
            provider.reactivate()
        self.message_user(request, f"Reactivated {len(providers)} provider(s).", messages.SUCCESS)

    @admin.action(description="Test connection (a cheap real call)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            check = test_connection(provider)
            if check.ok:
                self.message_user(
                    request,
                    f"“{provider.name}”: connected in {check.latency_ms} ms "
                    f"({check.model_count} models listed).",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    f"“{provider.name}”: failed after {check.latency_ms} ms — "
                    f"{check.error_kind}: {check.message}",
                    messages.ERROR,
                )
