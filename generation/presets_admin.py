"""Admin for shared presets: staff make the presets every user may start a chat from.
Personal presets belong to their owners and are not shown here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from generation.presets import Preset


class SharedPresetForm(forms.ModelForm[Preset]):
    def clean_name(self) -> str:
        # The owner is not a form field, so Django skips the shared-name constraint when
        # validating: checked here, a clash is a form error rather than a 500.
        name: str = self.cleaned_data["name"]
        clash = Preset.objects.filter(owner__isnull=True, name=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"A shared preset named “{name}” already exists.")
        return name


@admin.register(Preset)
class SharedPresetAdmin(admin.ModelAdmin[Preset]):
    form = SharedPresetForm
    list_display = ["name", "provider", "model", "temperature", "max_tokens", "thinking"]
    list_filter = ["provider", "thinking"]
    search_fields = ["name"]
    fields = ["name", "provider", "model", "system_prompt", "temperature", "max_tokens", "thinking"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Preset]:
        return super().get_queryset(request).filter(owner__isnull=True)

    def save_model(self, request: HttpRequest, obj: Preset, form: object, change: bool) -> None:
        obj.owner = None  # made here means shared
        super().save_model(request, obj, form, change)
