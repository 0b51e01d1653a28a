"""The report's filter form: a date range preset (or custom dates) and dimension filters."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from providers.models import Provider
from usage.models import OUTCOME_CHOICES, Source
from usage.reports import ReportQuery

PRESETS = [
    ("today", "Today"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("month", "This month"),
    ("custom", "Custom"),
]
DEFAULT_PRESET = "30d"
MAX_DAYS = 3 * 366


def preset_days(preset: str, today: date) -> tuple[date, date]:
    if preset == "today":
        return today, today
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "month":
        return today.replace(day=1), today
    return today - timedelta(days=29), today


class ReportForm(forms.Form):
    range = forms.ChoiceField(choices=PRESETS, required=False, initial=DEFAULT_PRESET)
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    provider = forms.ModelChoiceField(
        Provider.objects.order_by("name"), required=False, empty_label="All providers"
    )
    model = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"list": "usage-models", "placeholder": "All models"}),
    )
    user = forms.ModelChoiceField(
        get_user_model().objects.order_by(get_user_model().USERNAME_FIELD),
        required=False,
        empty_label="All users",
    )
    team = forms.ModelChoiceField(
        Group.objects.filter(team_budget__isnull=False).order_by("name"),
        required=False,
        empty_label="All teams",
        help_text="The calls counted toward the team: made while their user was in it.",
    )
    source = forms.ChoiceField(choices=[("", "All sources"), *Source.choices], required=False)
    outcome = forms.ChoiceField(choices=[("", "All outcomes"), *OUTCOME_CHOICES], required=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("range") == "custom":
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError("A custom range needs a start and an end date.")
            if start > end:
                raise forms.ValidationError("The start date is after the end date.")
            if (end - start).days > MAX_DAYS:
                raise forms.ValidationError("A custom range spans at most three years.")
        return data

    def to_query(self, today: date | None = None) -> ReportQuery:
        """The query for valid input; for invalid input, the default range unfiltered."""
        today = today or timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        preset = data.get("range") or DEFAULT_PRESET
        if preset == "custom":
            first, last = data["start"], data["end"]
        else:
            first, last = preset_days(preset, today)
        provider, user, team = data.get("provider"), data.get("user"), data.get("team")
        return ReportQuery(
            first_day=first,
            last_day=last,
            provider_id=provider.pk if provider else None,
            model=(data.get("model") or "").strip(),
            user_id=user.pk if user else None,
            source=data.get("source") or "",
            outcome=data.get("outcome") or "",
            team_id=team.pk if team else None,
        )
