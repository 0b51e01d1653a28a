"""Each provider's published models, cached in Django's cache and, briefly, in the process.

The async functions use the cache's async API; the sync ones its sync API and a
private event loop for the fetch, so neither kind waits on the other's thread.

Every chat send and every generation validates its model against the list. Reading it
from Django's cache each time cost a Redis round trip (or a locmem unpickle), and for
the worker's async read a thread hop (cache.aget is sync_to_async); in the embedded
process that hop went to asgiref's one shared thread for every worker thread at once
(py-spy, chat_ttft: 11% of the worker's samples). So each process keeps the lists it
has read for LOCAL_SECONDS. An edit of the provider changes the cache key
(`models_key` holds its updated_at), so an edit is seen at once; a list refreshed by
another process's connection test is seen here within LOCAL_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
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
LOCAL_SECONDS = 30.0
LOCAL_MAX_ENTRIES = 1000

# key -> (monotonic expiry, models). Plain dict operations: safe across threads.
_local: dict[str, tuple[float, tuple[str, ...]]] = {}


def _local_get(key: str) -> list[str] | None:
    entry = _local.get(key)
    if entry is None or entry[0] < time.monotonic():
        return None
    return list(entry[1])


def _remember(key: str, models: list[str]) -> None:
    if len(_local) >= LOCAL_MAX_ENTRIES:
        _local.clear()  # stale versions of edited providers; rare, and cheap to refill
    seconds = min(LOCAL_SECONDS, models_cache_seconds())
    _local[key] = (time.monotonic() + seconds, tuple(models))


def store_models(key: str, models: list[str]) -> None:
    """A fetched list, in Django's cache and this process."""
    cache.set(key, models, timeout=models_cache_seconds())
    _remember(key, models)


async def astore_models(key: str, models: list[str]) -> None:
    await cache.aset(key, models, timeout=models_cache_seconds())
    _remember(key, models)


def forget_local_models() -> None:
    _local.clear()


async def alist_models(provider: Provider) -> list[str]:
    """The provider's model ids; raises `ProviderError` when they cannot be fetched."""
    key = models_key(provider)
    if (local := _local_get(key)) is not None:
        return local
    cached = _from_cache(await cache.aget(key))
    if cached is not None:
        _remember(key, cached)
        return cached
    try:
        models = await fetch_models(provider)
    except ProviderError as error:
        await cache.aset(key, error.kind.value, timeout=FAILURE_CACHE_SECONDS)
        raise
    await astore_models(key, models)
    return models


def list_models(provider: Provider) -> list[str]:
    """`alist_models` for sync code (views, the admin)."""
    key = models_key(provider)
    if (local := _local_get(key)) is not None:
        return local
    cached = _from_cache(cache.get(key))
    if cached is not None:
        _remember(key, cached)
        return cached
    try:
        models = run_in_own_loop(fetch_models(provider))
    except ProviderError as error:
        cache.set(key, error.kind.value, timeout=FAILURE_CACHE_SECONDS)
        raise
    store_models(key, models)
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
    key = models_key(provider)
    if (local := _local_get(key)) is not None:
        return local
    cached = cache.get(key)
    if not isinstance(cached, list):
        return None
    _remember(key, cached)
    return cached


def models_cache_seconds() -> int:
    return int(switchboard_setting("MODELS_CACHE_SECONDS"))


def _from_cache(value: Any) -> list[str] | None:
    """The cached list; a cached failure (its error kind) is raised again."""
    if isinstance(value, str):
        raise provider_error(ErrorKind(value))
    return value if isinstance(value, list) else None
