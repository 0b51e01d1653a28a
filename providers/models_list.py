"""Each provider's published models, cached in Django's cache."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from django.core.cache import cache

from providers.adapters import get_adapter
from providers.adapters.error_mapping import map_exception, provider_error
from providers.cache import models_key
from providers.errors import ErrorKind, ProviderError
from providers.retry import switchboard_setting

if TYPE_CHECKING:
    from providers.models import Provider

FETCH_TIMEOUT_SECONDS = 10.0
# A failed fetch is remembered briefly so that validation does not retry it on every request.
FAILURE_CACHE_SECONDS = 60


async def alist_models(provider: Provider) -> list[str]:
    """The provider's model ids; raises `ProviderError` when they cannot be fetched."""
    key = models_key(provider)
    cached = await cache.aget(key)
    if isinstance(cached, list):
        return cached
    if isinstance(cached, str):
        raise provider_error(ErrorKind(cached))
    try:
        models = await fetch_models(provider)
    except ProviderError as error:
        await cache.aset(key, error.kind.value, timeout=FAILURE_CACHE_SECONDS)
        raise
    await cache.aset(key, models, timeout=int(switchboard_setting("MODELS_CACHE_SECONDS")))
    return models


async def fetch_models(provider: Provider) -> list[str]:
    """Ask the provider now, bypassing the cache."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
            return await get_adapter(provider).list_models()
    except Exception as exc:
        raise map_exception(exc) from None


def list_models(provider: Provider) -> list[str]:
    """`alist_models` for sync code (views, the admin)."""
    return async_to_sync(alist_models)(provider)


def cached_models(provider: Provider) -> list[str] | None:
    """The cached list without fetching, or None."""
    cached = cache.get(models_key(provider))
    return cached if isinstance(cached, list) else None
