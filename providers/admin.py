from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from providers.admin_health import detail, health_of, may_see_health, summary
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

    def get_list_display(
        self, request: HttpRequest
    ) -> list[str | Callable[[Provider], str | bool]]:
        shown: list[str | Callable[[Provider], str | bool]] = list(
            super().get_list_display(request)
        )
        if may_see_health(request):
            shown.append(_health_column())
        return shown

    def get_fieldsets(self, request: HttpRequest, obj: Provider | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and may_see_health(request):
            fieldsets.insert(1, ("Health (last hour)", {"fields": ["health"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and may_see_health(request):
            fields.append("health")
        return fields

    @admin.display(description="Health")
    def health(self, obj: Provider) -> SafeString:
        return detail(health_of([obj.pk])[obj.pk])

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


def _health_column() -> Callable[[Provider], SafeString]:
    """The change list's health column: every provider's health read once per page (a
    few queries), not per row."""
    found: dict[Any, Any] = {}

    @admin.display(description="Health (last hour)")
    def health(obj: Provider) -> SafeString:
        if not found:
            found.update(health_of(Provider.objects.values_list("pk", flat=True)))
        return summary(found[obj.pk]) if obj.pk in found else SafeString("")

    return health
