"""Redis connections are shared per process: the cache's pool and the relay's clients."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import async_to_sync

from config.redis_cache import SharedPoolRedisCache
from generation.relay_redis import RedisRelay

pytestmark = pytest.mark.redis

URL = "redis://127.0.0.1:6379/15"


def test_cache_objects_of_different_threads_share_one_pool():
    # Django makes a cache object per thread; each used to build pools of its own.
    pools = []

    def use_cache() -> None:
        cache = SharedPoolRedisCache(URL, {"KEY_PREFIX": "pool-test"})
        cache.set("k", "v", 5)
        assert cache.get("k") == "v"
        pools.append(cache._cache._get_connection_pool(write=True))

    threads = [threading.Thread(target=use_cache) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(pools) == 3
    assert pools[0] is pools[1] is pools[2]
    other = SharedPoolRedisCache(URL, {"OPTIONS": {"max_connections": 7}})
    assert other._cache._get_connection_pool(write=True) is not pools[0]


def test_relay_readers_on_one_loop_share_one_client_until_the_last_leaves():
    relay = RedisRelay(URL)

    async def two_readers() -> tuple[object, object, int, bool]:
        first, second = relay._enter(), relay._enter()
        readers = first.readers
        await relay._leave(first)
        still_open = relay._loop_clients.get(asyncio.get_running_loop()) is second
        await relay._leave(second)
        return first.client, second.client, readers, still_open

    first, second, readers, still_open = async_to_sync(two_readers)()
    assert first is second
    assert readers == 2
    assert still_open
    # The last reader closed it: nothing is left to outlive the loop.
    assert relay._loop_clients == {}


def test_cache_operations_reuse_one_client_per_pool():
    cache = SharedPoolRedisCache(URL, {"KEY_PREFIX": "pool-test"})
    first = cache._cache.get_client("a", write=True)
    cache.set("k", "v", 5)
    assert cache.get("k") == "v"
    assert cache._cache.get_client("b") is first
    other = SharedPoolRedisCache(URL, {"OPTIONS": {"max_connections": 7}})
    assert other._cache.get_client("a") is not first
