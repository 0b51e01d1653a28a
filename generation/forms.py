from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from generation.presets import NAME_MAX
from generation.uploads import Upload, UploadRefused, check_uploads
from providers.models import Provider
from providers.validation import encodable
from routing.models import Alias


def validate_encodable(value: str) -> None:
    # A form post may name its charset (multipart/form-data; charset=utf-7), and some
    # charsets decode to a lone surrogate: refused in words, not a 500 from the database.
    if not encodable(value):
        raise forms.ValidationError(
            "This text holds a character that cannot be sent (a lone surrogate). "
            "Remove it and try again."
        )


def _max_tokens_cap() -> int:
    return int(settings.SWITCHBOARD.get("MAX_TOKENS_CAP", 8192))


def validate_system_prompt_length(value: str) -> None:
    limit = int(settings.SWITCHBOARD.get("MAX_SYSTEM_PROMPT_CHARS", 20_000))
    if len(value) > limit:
        raise forms.ValidationError(
            f"A system prompt is at most {limit} characters (this one has {len(value)})."
        )


def system_prompt_field() -> forms.CharField:
    # Blank is allowed: it means "no system prompt". Surrounding whitespace is dropped.
    return forms.CharField(
        required=False,
        widget=forms.Textarea,
        validators=[validate_encodable, validate_system_prompt_length],
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.FileField):
    """Any number of files under one name (Django's documented pattern for several
    files), each checked by its bytes (uploads.check_uploads): cleans to Uploads."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Upload]:
        files = list(data) if isinstance(data, list | tuple) else [data] if data else []
        try:
            return check_uploads(files)
        except UploadRefused as exc:
            raise forms.ValidationError(exc.message) from exc


def alias_field() -> forms.ModelChoiceField[Alias]:
    """An active alias (routing) to answer instead of a provider and model; blank: none."""
    return forms.ModelChoiceField(
        queryset=Alias.objects.filter(is_active=True),
        required=False,
        error_messages={"invalid_choice": "That alias is no longer available."},
    )


class ComposerForm(forms.Form):
    # Blank is fine when files are attached (clean checks that one or the other is there).
    text = forms.CharField(
        strip=False, required=False, widget=forms.Textarea, validators=[validate_encodable]
    )
    attachments = AttachmentsField(required=False)
    # An alias, when one is picked, answers instead of the provider and model.
    alias = alias_field()
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(), empty_label=None, required=False
    )
    model = forms.CharField(max_length=200, required=False, validators=[validate_encodable])
    # Blank means "the provider's default"; 0 is a real temperature and stays 0.
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    max_tokens = forms.IntegerField(min_value=1, required=False)
    # Only a new chat's first message carries it; an existing chat's is edited in the header.
    system_prompt = system_prompt_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field = self.fields["provider"]
        assert isinstance(provider_field, forms.ModelChoiceField)
        provider_field.queryset = Provider.objects.filter(is_active=True)
        cap = _max_tokens_cap()
        self.fields["max_tokens"].validators.append(MaxValueValidator(cap))
        self.fields["max_tokens"].widget.attrs["max"] = cap

    def clean_text(self) -> str:
        text: str = self.cleaned_data["text"]
        limit = int(settings.SWITCHBOARD.get("MAX_PROMPT_CHARS", 200_000))
        if len(text) > limit:
            raise forms.ValidationError(f"A message is at most {limit} characters.")
        return text

    # Whether a provider (or an alias) must be named: an edit may leave both to the chat.
    needs_route = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        blank = "text" in data and not data["text"].strip()
        if blank and "attachments" in data and not data["attachments"]:
            self.add_error("text", "Write a message first.")
        if data.get("alias") is not None:
            # The alias answers: a provider left in the picker meanwhile switched off is
            # no reason to refuse.
            if self.errors.pop("provider", None) is not None:
                data["provider"] = None
        elif self.needs_route and not self.errors and data.get("provider") is None:
            self.add_error("provider", "Pick a provider or an alias.")
        return data


class RetryForm(forms.Form):
    """Optional: the provider and model to answer with instead of the failed answer's
    (after a model that takes no images, one picked in the composer)."""

    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), required=False)
    model = forms.CharField(max_length=200, required=False, validators=[validate_encodable])
    alias = alias_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field = self.fields["provider"]
        assert isinstance(provider_field, forms.ModelChoiceField)
        provider_field.queryset = Provider.objects.filter(is_active=True)


class EditForm(ComposerForm):
    """An edited user message. The alias or provider and model, and the parameters come
    from the composer (htmx includes them); a plain post without them answers as the
    chat's last answer did."""

    needs_route = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["system_prompt"]  # an existing chat's prompt is edited in the header


class RegenerateForm(forms.Form):
    """Regenerate an answer: blank means the answer's own provider and model."""

    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(),
        required=False,
        error_messages={"invalid_choice": "That provider is no longer available."},
    )
    model = forms.CharField(max_length=200, required=False, validators=[validate_encodable])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider_field = self.fields["provider"]
        assert isinstance(provider_field, forms.ModelChoiceField)
        provider_field.queryset = Provider.objects.filter(is_active=True)


class RenameForm(forms.Form):
    title = forms.CharField(max_length=120, validators=[validate_encodable])


class SystemPromptForm(forms.Form):
    system_prompt = system_prompt_field()


class ThinkingForm(forms.Form):
    """A chat's extended thinking: on or off, and its budget within the adapter's
    limits (`low`, `high`). A blank budget keeps the chat's own."""

    thinking = forms.BooleanField(required=False)
    budget = forms.IntegerField(required=False)

    def __init__(self, *args: Any, low: int, high: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.low, self.high = low, high
        budget = self.fields["budget"]
        budget.widget.attrs.update(min=low, max=high, step=256)
        budget.error_messages["invalid"] = "The thinking budget is a whole number of tokens."

    def clean_budget(self) -> int | None:
        budget: int | None = self.cleaned_data["budget"]
        if budget is not None and not self.low <= budget <= self.high:
            raise forms.ValidationError(
                f"The thinking budget must be between {self.low} and {self.high} tokens."
            )
        return budget


class SavePresetForm(forms.Form):
    """A personal preset from a chat: the name, and the composer's temperature and max
    tokens (the chat itself gives the provider, model and system prompt)."""

    name = forms.CharField(max_length=NAME_MAX, validators=[validate_encodable])
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    max_tokens = forms.IntegerField(min_value=1, required=False)
    thinking = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["max_tokens"].validators.append(MaxValueValidator(_max_tokens_cap()))


SEARCH_MAX = 200


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        error_messages={"max_length": f"Search for at most {SEARCH_MAX} characters."},
    )


_PLAIN_INT = re.compile(r"[0-9]{1,18}")


def plain_int(raw: str) -> int | None:
    """The int that ASCII digits spell (at most 18 of them, so it fits a bigint), else
    None: `str.isdigit` also accepts "²" and the like, which `int()` then refuses."""
    return int(raw) if _PLAIN_INT.fullmatch(raw) else None
