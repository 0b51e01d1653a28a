from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from providers.crypto import is_token
from providers.kinds import KIND_SPECS, ProviderKind
from providers.models import Provider, validate_api_key


class ProviderAdminForm(forms.ModelForm[Provider]):
    """The admin form. The API key is write-only: never rendered back, blank keeps it.

    A kind that may go without a key (KIND_SPECS) may be saved with none, or have its
    stored key removed: a local server such as Ollama or llama.cpp needs none.
    """

    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=False,  # validate_api_key strips and rejects inner control characters
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_api_key = forms.BooleanField(
        label="Remove the stored key",
        required=False,
        help_text="For an OpenAI-compatible server that needs no key; calls then carry none.",
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
            "prompt_caching",
            "cache_ttl_seconds",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["new_api_key"]
        if self.instance._state.adding:
            field.help_text = (
                "Stored encrypted. It cannot be shown again after saving. Leave it blank "
                "for an OpenAI-compatible server that needs none (Ollama, llama.cpp)."
            )
        elif self.instance.api_key is None:
            field.help_text = "No key stored. Type one to add it."
        else:
            hint = self.instance.api_key_hint or "stored"
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
        if not value:
            return ""  # keep the stored key, or none: `clean` decides whether the kind may
        key = validate_api_key(value)
        if is_token(key):
            raise ValidationError("That looks like an encrypted token, not an API key.")
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind, new_key, clear = (cleaned.get(k) for k in ("kind", "new_api_key", "clear_api_key"))
        if new_key and clear:
            self.add_error("clear_api_key", "Type a new key or remove the stored one, not both.")
        stored = not self.instance._state.adding and self.instance.api_key is not None
        keeps_a_key = bool(new_key) or (stored and not clear)
        if kind in KIND_SPECS and KIND_SPECS[kind].requires_api_key and not keeps_a_key:
            self.add_error(
                "new_api_key",
                f"{ProviderKind(kind).label} needs an API key. Only an OpenAI-compatible "
                "server (Ollama, llama.cpp) may go without one.",
            )
        return cleaned

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            provider.set_api_key(self.cleaned_data["new_api_key"])
        elif self.cleaned_data.get("clear_api_key"):
            provider.clear_api_key()
        if commit:
            provider.save()
        return provider
