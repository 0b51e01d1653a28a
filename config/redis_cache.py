"""Django's Redis cache with one connection pool per process instead of one per thread.

Django makes a cache backend object per thread (and per async context), and its Redis
client builds its pools lazily on that object: every new request thread opened new TCP
connections to Redis (and redis-py looks up its own version through importlib.metadata
for each one). Pools are thread-safe, so one per server URL and options is shared here.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[str, str], Any] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        # The options (parser, pool kwargs) are part of the key: two caches configured
        # differently never share a pool.
        key = (self._servers[index], repr(sorted(self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    _pools[key] = pool
        return pool


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
