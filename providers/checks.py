"""System check: every stored API key must decrypt under the configured keyring.

Run by `manage.py check` and at server start, so a wrong or missing key shows up
at start-up, naming the provider, rather than at the first chat.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from providers.crypto import DecryptionError, get_keyring


@register("switchboard")
def check_provider_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from providers.models import Provider

    try:
        providers = list(Provider.objects.exclude(api_key__isnull=True))
    except DatabaseError:
        return []  # not migrated yet: nothing stored to check
    if not providers:
        return []
    try:
        get_keyring()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="providers.E001")]
    errors = []
    for provider in providers:
        try:
            provider.get_api_key()
        except DecryptionError as exc:
            errors.append(
                Error(
                    f"The API key of provider {provider.name!r} cannot be decrypted: {exc}",
                    hint="Add the key it was encrypted with to ENCRYPTION_KEYS (any position "
                    "after the first), then run `manage.py rotate_encryption_keys`.",
                    id="providers.E002",
                )
            )
    return errors
