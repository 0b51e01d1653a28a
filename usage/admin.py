"""Admin for prices, budgets and the read-only usage records (with the report page)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path

from usage.admin_views import usage_report
from usage.models import (
    CURRENCY,
    BudgetAlert,
    BudgetDefault,
    ModelPrice,
    Reservation,
    TeamBudget,
    UsageDaily,
    UsageRecord,
    UserBudget,
)
from usage.rollup import rolled_until
from usage.templatetags.usage_format import usd


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin[ModelPrice]):
    list_display = [
        "model",
        "match",
        "provider_kind",
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "currency",
        "valid_from",
    ]
    list_filter = ["provider_kind", "match"]
    search_fields = ["model"]
    ordering = ["provider_kind", "model", "-valid_from"]


class ModelFilter(admin.SimpleListFilter):
    """Models seen in usage, read from the small rollup table plus the unrolled days."""

    title = "model"
    parameter_name = "model"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        names = set(UsageDaily.objects.order_by().values_list("model", flat=True).distinct())
        until = rolled_until()
        recent = UsageRecord.objects.all()
        if until is not None:
            recent = recent.filter(created_at__gte=until)
        # order_by(): the model's default ordering would otherwise join the DISTINCT.
        names |= set(recent.order_by().values_list("model", flat=True).distinct())
        return [(n, n) for n in sorted(names)]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[UsageRecord]
    ) -> QuerySet[UsageRecord]:
        return queryset.filter(model=self.value()) if self.value() else queryset


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin[UsageRecord]):
    change_list_template = "admin/usage/usagerecord/change_list.html"
    list_display = [
        "created_at",
        "provider",
        "model",
        "user",
        "source",
        "outcome",
        "attempt_number",
        "input_tokens",
        "output_tokens",
        "cache_hit",
        "tokens_estimated",
        "cost_display",
    ]
    list_filter = [
        ("created_at", admin.DateFieldListFilter),
        "provider",
        ModelFilter,
        "user",
        "source",
        "outcome",
        "cache_hit",
    ]
    list_select_related = ["provider", "user"]
    search_fields = ["request_id"]
    # A million rows: skip the unfiltered COUNT(*) the paginator would otherwise add.
    show_full_result_count = False

    @admin.display(description=f"Cost ({CURRENCY})", ordering="cost_nanos")
    def cost_display(self, obj: UsageRecord) -> str:
        return "unknown (unpriced)" if obj.cost is None else f"{usd(obj.cost, 6)} {CURRENCY}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "report/",
            self.admin_site.admin_view(usage_report),
            name="usage_usagerecord_report",
        )
        return [report, *super().get_urls()]


@admin.register(UserBudget)
class UserBudgetAdmin(admin.ModelAdmin[UserBudget]):
    list_display = ["user", "monthly_limit"]
    autocomplete_fields = ["user"]
    search_fields = ["user__username"]


@admin.register(TeamBudget)
class TeamBudgetAdmin(admin.ModelAdmin[TeamBudget]):
    """A group becomes a team for usage here: its limit and the managers alerted."""

    list_display = ["group", "monthly_limit", "manager_names"]
    autocomplete_fields = ["group"]
    filter_horizontal = ["managers"]
    search_fields = ["group__name"]

    @admin.display(description="managers")
    def manager_names(self, obj: TeamBudget) -> str:
        return ", ".join(sorted(m.get_username() for m in obj.managers.all())) or "\u2013"

    def get_queryset(self, request: HttpRequest) -> QuerySet[TeamBudget]:
        return super().get_queryset(request).select_related("group").prefetch_related("managers")


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin[BudgetAlert]):
    """The alerts sent (read-only: a row is what keeps a threshold from sending twice)."""

    list_display = ["period_start", "threshold", "user", "team", "spent", "limit", "sent_at"]
    list_filter = ["threshold", "period_start"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False


@admin.register(BudgetDefault)
class BudgetDefaultAdmin(admin.ModelAdmin[BudgetDefault]):
    list_display = ["__str__", "monthly_limit"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row only: the default for everyone.
        return not BudgetDefault.objects.exists() and super().has_add_permission(request)

    def save_model(self, request: HttpRequest, obj: BudgetDefault, form: Any, change: bool) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin[Reservation]):
    list_display = ["created_at", "user", "model", "amount_nanos", "actual_nanos", "status"]
    list_filter = ["status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
