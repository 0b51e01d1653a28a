from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from providers.crypto import is_token
from providers.models import Provider, validate_api_key


class ProviderAdminForm(forms.ModelForm[Provider]):
    """The admin form. The API key is write-only: never rendered back, blank keeps it."""

    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=False,  # validate_api_key strips and rejects inner control characters
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = Provider
        fields = [
            "name",
            "kind",
            "base_url",
            "default_model",
            "is_active",
            "cache_responses",
            "cache_ttl_seconds",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["new_api_key"]
        if self.instance._state.adding:
            field.help_text = "Stored encrypted. It cannot be shown again after saving."
        else:
            hint = self.instance.api_key_hint or "none"
            field.help_text = (
                f"Stored key: {hint}. Leave blank to keep it; type a new one to replace it."
            )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Enter a name.")
        return name

    def clean_new_api_key(self) -> str:
        value = self.cleaned_data.get("new_api_key") or ""
        if not value and not self.instance._state.adding:
            return ""  # keep the stored key
        key = validate_api_key(value)
        if is_token(key):
            raise ValidationError("That looks like an encrypted token, not an API key.")
        return key

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            provider.set_api_key(self.cleaned_data["new_api_key"])
        if commit:
            provider.save()
        return provider
