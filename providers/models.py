from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.utils import timezone

from providers.crypto import DecryptionError
from providers.errors import ErrorKind, ProviderError
from providers.fields import EncryptedTextField
from providers.kinds import KIND_SPECS, ProviderKind
from providers.redaction import mask_key, remember_secret

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_API_KEY_LENGTH = 512


def validate_api_key(value: str) -> str:
    """Return the key stripped of surrounding white space, or raise ValidationError."""
    key = value.strip()
    if not key:
        raise ValidationError("Enter the API key; it cannot be empty or only spaces.")
    if len(key) > MAX_API_KEY_LENGTH:
        raise ValidationError(f"An API key is at most {MAX_API_KEY_LENGTH} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValidationError("The API key contains control characters; paste it again.")
    return key


class Provider(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=ProviderKind.choices)
    # None: no key stored, for a kind that may go without one (a local server).
    api_key = EncryptedTextField(editable=False, null=True)
    # The masked form of the key (first 3 and last 4 characters), kept so that lists
    # never need to decrypt.
    api_key_hint = models.CharField(max_length=16, editable=False, blank=True)
    base_url = models.CharField(
        "base URL",
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Required for OpenAI-compatible servers. Blank means the provider's own API.",
    )
    default_model = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    cache_responses = models.BooleanField(
        default=False, help_text="Reuse answers to identical requests made with temperature 0."
    )
    prompt_caching = models.BooleanField(
        default=True,
        help_text=(
            "Mark the system prompt and the conversation so far for the provider's prompt "
            "cache (Anthropic; OpenAI caches on its own): later turns read it at a fraction "
            "of the input price."
        ),
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        default=3600, help_text="How long a cached answer is reused, in seconds."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deactivated_at = models.DateTimeField(null=True, blank=True, editable=False)
    deactivated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        editable=False,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        spec = KIND_SPECS.get(self.kind)
        if spec and spec.requires_base_url and not self.base_url:
            raise ValidationError({"base_url": "An OpenAI-compatible provider needs a base URL."})

    @property
    def effective_base_url(self) -> str:
        """Where requests go: the configured base URL, or the kind's default ("" = SDK's)."""
        return self.base_url or KIND_SPECS[self.kind].default_base_url

    @property
    def effective_default_model(self) -> str:
        return self.default_model or KIND_SPECS[self.kind].default_model

    @property
    def requires_api_key(self) -> bool:
        return KIND_SPECS[self.kind].requires_api_key

    def set_api_key(self, key: str) -> None:
        key = validate_api_key(key)
        self.api_key = key
        self.api_key_hint = mask_key(key)

    def clear_api_key(self) -> None:
        self.api_key = None
        self.api_key_hint = ""

    def get_api_key(self) -> str | None:
        """Decrypt the key; None when none is stored. Raises `DecryptionError` rather
        than returning anything else."""
        field = self._meta.get_field("api_key")
        assert isinstance(field, EncryptedTextField)
        key = field.decrypt(self)
        if not key:
            return None
        remember_secret(key)
        return key

    def api_key_for_calls(self) -> str | None:
        """The key calls go out with: None for a provider that needs none (a local server).

        Raises a `ProviderError` of kind CONFIGURATION, in words for the user, when calls
        cannot go out as configured: the kind needs a key and none is stored, or the
        stored key cannot be decrypted. Never falls back to a key from the environment.
        """
        try:
            key = self.get_api_key()
        except (DecryptionError, ImproperlyConfigured):
            raise ProviderError(
                ErrorKind.CONFIGURATION,
                "This provider's API key cannot be decrypted with this server's encryption "
                "keys. Ask an administrator to enter the key again in the admin.",
            ) from None
        if key is None and self.requires_api_key:
            raise ProviderError(
                ErrorKind.CONFIGURATION,
                f"This provider has no API key, and {self.get_kind_display()} needs one. "
                "Ask an administrator to add it in the admin.",
            )
        return key

    def is_referenced(self) -> bool:
        """True once any row (a conversation, a message, a usage record…) points here:
        such a provider is deactivated, never deleted, so history keeps its name."""
        for relation in self._meta.get_fields(include_hidden=True):
            if (
                isinstance(relation, models.ForeignObjectRel)
                and relation.one_to_many
                and relation.auto_created
            ):
                manager = relation.related_model._base_manager
                if manager.filter(**{relation.field.name: self}).exists():
                    return True
        return False

    def deactivate(self, *, by: User | None) -> None:
        self.is_active = False
        self.deactivated_at = timezone.now()
        self.deactivated_by = by
        self.save(update_fields=["is_active", "deactivated_at", "deactivated_by", "updated_at"])

    def reactivate(self) -> None:
        self.is_active = True
        self.deactivated_at = None
        self.deactivated_by = None
        self.save(update_fields=["is_active", "deactivated_at", "deactivated_by", "updated_at"])
