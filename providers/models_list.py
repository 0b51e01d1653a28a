"""Each provider's published models, cached in Django's cache.

The async functions use the cache's async API; the sync ones its sync API and a
private event loop for the fetch, so neither kind waits on the other's thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from django.core.cache import cache

from providers.adapters import get_adapter
from providers.adapters.clients import run_in_own_loop
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
    cached = _from_cache(await cache.aget(key))
    if cached is not None:
        return cached
    try:
        models = await fetch_models(provider)
    except ProviderError as error:
        await cache.aset(key, error.kind.value, timeout=FAILURE_CACHE_SECONDS)
        raise
    await cache.aset(key, models, timeout=models_cache_seconds())
    return models


def list_models(provider: Provider) -> list[str]:
    """`alist_models` for sync code (views, the admin)."""
    key = models_key(provider)
    cached = _from_cache(cache.get(key))
    if cached is not None:
        return cached
    try:
        models = run_in_own_loop(fetch_models(provider))
    except ProviderError as error:
        cache.set(key, error.kind.value, timeout=FAILURE_CACHE_SECONDS)
        raise
    cache.set(key, models, timeout=models_cache_seconds())
    return models


async def fetch_models(provider: Provider) -> list[str]:
    """Ask the provider now, bypassing the cache."""
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
            return await get_adapter(provider).list_models()
    except Exception as exc:
        raise map_exception(exc) from None


def cached_models(provider: Provider) -> list[str] | None:
    """The cached list without fetching, or None."""
    cached = cache.get(models_key(provider))
    return cached if isinstance(cached, list) else None


def models_cache_seconds() -> int:
    return int(switchboard_setting("MODELS_CACHE_SECONDS"))


def _from_cache(value: Any) -> list[str] | None:
    """The cached list; a cached failure (its error kind) is raised again."""
    if isinstance(value, str):
        raise provider_error(ErrorKind(value))
    return value if isinstance(value, list) else None
