from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from routing.models import Alias, AliasTarget


class TargetsFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    def clean(self) -> None:
        super().clean()
        kept = [
            form
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        if not kept:
            raise ValidationError(
                "Add at least one target (a provider and a model): an alias without one "
                "cannot answer."
            )


class TargetInline(admin.TabularInline[AliasTarget, Alias]):
    model = AliasTarget
    formset = TargetsFormSet
    extra = 1
    fields = ["priority", "provider", "model", "weight", "provider_state"]
    readonly_fields = ["provider_state"]

    @admin.display(description="provider state")
    def provider_state(self, obj: AliasTarget) -> str:
        if not obj.pk:  # a blank row of the inline: no provider yet
            return ""
        if not obj.provider.is_active:
            return "Inactive provider: skipped until it is reactivated"
        return "Active"


class AliasForm(forms.ModelForm[Alias]):
    class Meta:
        model = Alias
        fields = ["name", "description", "is_active", "is_default_for_chats"]

    def clean_is_default_for_chats(self) -> bool:
        value: bool = self.cleaned_data["is_default_for_chats"]
        if value:
            other = Alias.objects.filter(is_default_for_chats=True).exclude(pk=self.instance.pk)
            if (found := other.first()) is not None:
                raise ValidationError(
                    f"{found.name!r} is the default for new chats; untick it there first."
                )
        return value


@admin.register(Alias)
class AliasAdmin(admin.ModelAdmin[Alias]):
    form = AliasForm
    inlines = [TargetInline]
    list_display = ["name", "is_active", "is_default_for_chats", "targets_summary"]
    list_filter = ["is_active"]
    search_fields = ["name"]

    @admin.display(description="targets")
    def targets_summary(self, obj: Alias) -> str:
        parts = []
        for target in obj.targets.select_related("provider"):
            state = "" if target.provider.is_active else " (inactive)"
            parts.append(f"{target.priority}: {target}{state} x{target.weight}")
        return "; ".join(parts) or "none"

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("targets__provider")
