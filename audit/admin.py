"""The audit log in the admin: read and filter only, for everyone, superusers included.

Reading needs the "Can view audit event" permission (superusers have it; give it to the
staff who review the log, e.g. through a group). No add, change or delete permission
exists for the model, and the admin asks none of them.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import AuditEvent


class IpAddressFilter(admin.SimpleListFilter):
    """The addresses seen most recently: a list of every address ever seen would grow
    without bound (the search box finds any other)."""

    title = "IP address"
    parameter_name = "ip_address"
    shown = 30

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[AuditEvent]
    ) -> list[tuple[str, str]]:
        recent = (
            AuditEvent.objects.exclude(ip_address=None)
            .order_by("-created_at")
            .values_list("ip_address", flat=True)[:1000]
        )
        addresses = [address for address in dict.fromkeys(recent) if address]
        return [(address, address) for address in addresses[: self.shown]]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(ip_address=value) if value else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = [
        "created_at",
        "event",
        "actor",
        "ip_address",
        "object_type",
        "object_repr",
        "detail_text",
    ]
    list_filter = ["event", ("created_at", admin.DateFieldListFilter), IpAddressFilter, "actor"]
    search_fields = ["actor", "object_repr", "object_id", "ip_address", "detail"]
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "event",
        "actor",
        "user_id",
        "ip_address",
        "object_type",
        "object_id",
        "object_repr",
        "detail_text",
    )
    readonly_fields = fields
    list_per_page = 100
    show_full_result_count = False  # a count over millions of rows on every page

    @admin.display(description="detail")
    def detail_text(self, obj: AuditEvent) -> str:
        return json.dumps(obj.detail, ensure_ascii=False, sort_keys=True)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
