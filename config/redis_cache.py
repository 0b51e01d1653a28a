"""Django's Redis cache with one connection pool per process instead of one per thread.

Django makes a cache backend object per thread (and per async context), and its Redis
client builds its pools lazily on that object: every new request thread opened new TCP
connections to Redis (and redis-py looks up its own version through importlib.metadata
for each one). Pools are thread-safe, so one per server URL and options is shared here.

Django also builds a new `redis.Redis` object for every cache operation; its __init__
runs redis-py's deprecated-argument checks and was 8-13% of a scale-out web process's
CPU in chat_ttft (the session read of every request). A client over a pool is
thread-safe (each command borrows a pooled connection), so one per pool is kept too.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_pools: dict[tuple[str, str], Any] = {}
_clients: dict[int, Any] = {}  # id(pool) -> its client; pools live as long as the process
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

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = _clients.get(id(pool))
        if client is None:
            with _pools_lock:
                client = _clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
