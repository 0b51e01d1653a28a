"""The Redis Streams relay: one stream per message, entry id "<offset>-0" = SSE event id.

Delta entries carry explicit ids (the text offset), so any web process can resume a
reader with XREAD from "<last id>-0". Completion appends an entry with an automatic
(millisecond clock) id, always above any text offset, then the stream expires.

Readers: every `follow()` on an event loop is served by that loop's `SharedReader`
(relay_redis_reader.py), one blocking XREAD over all the streams followed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import redis
import redis.asyncio

from generation.relay import (
    ACTIVE_TTL,
    COMPLETED_TTL,
    MAX_EVENTS,
    STARTED_TTL,
    RelayEvent,
    merge_contiguous,
)
from generation.relay_redis_reader import SharedReader

logger = logging.getLogger(__name__)

PREFIX = "switchboard:relay:"
# Each web process's reader wakes itself through a stream of its own under this prefix.
WAKE_PREFIX = f"{PREFIX}wake:"
# A publisher gives a stream its TTL with its first event, and again this long after (a
# generation running past ACTIVE_TTL keeps its stream), not with every delta.
TTL_REFRESH = ACTIVE_TTL / 4
# Streams whose TTL a publisher remembers; a forgotten one just gets EXPIRE again.
TTL_MEMORY = 10_000


def _stream_name(key: str) -> str:
    return f"{PREFIX}{key}"


def _entry(key: str, event: RelayEvent) -> tuple[str, dict[str, str], str]:
    """XADD's stream, fields and explicit id (the text offset) for a delta."""
    return _stream_name(key), {"t": event.text}, f"{event.id}-0"


def _cancel_name(key: str) -> str:
    return f"{PREFIX}{key}:cancel"


# What a start wait asks Redis to block for: longer than any wait, which ends first.
STARTED_BLOCK = 5


def _started_name(key: str) -> str:
    return f"{PREFIX}{key}:started"


@dataclass
class _LoopClient:
    # The loop's shared reader: it owns the loop's (two) Redis connections.
    client: SharedReader
    readers: int = 0  # follow() calls on the loop


class RedisRelay:
    def __init__(self, url: str) -> None:
        self.url = url
        # A bounded connect: an unreachable Redis fails a send's wait or a publish
        # rather than hanging it.
        self._client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
        # The reader and its connections belong to the loop that made them: one per loop,
        # shared by the follow() calls on it. The last to leave stops it and closes them.
        self._loop_clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._loop_clients_lock = threading.Lock()
        # Stream key -> monotonic time this process last set its TTL (publishers are
        # worker threads, hence the lock).
        self._ttl_set: dict[str, float] = {}
        self._ttl_lock = threading.Lock()
        # apublish's clients: one per loop that publishes (the stream loop).
        self._publishers: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}

    def _enter(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._loop_clients_lock:
            entry = self._loop_clients.get(loop)
            if entry is None:
                entry = self._loop_clients[loop] = _LoopClient(SharedReader(self.url, WAKE_PREFIX))
            entry.readers += 1
            return entry

    async def _leave(self, entry: _LoopClient) -> None:
        loop = asyncio.get_running_loop()
        with self._loop_clients_lock:
            entry.readers -= 1
            if entry.readers > 0:
                return
            # Forgotten before the await below: a follow() starting meanwhile gets a
            # new reader rather than this stopping one.
            if self._loop_clients.get(loop) is entry:
                del self._loop_clients[loop]
        await entry.client.stop()

    def ping(self) -> None:
        self._client.ping()

    def _needs_ttl(self, key: str) -> bool:
        """Whether this publish should (re)set the stream's TTL; records that it will."""
        now = time.monotonic()
        with self._ttl_lock:
            last = self._ttl_set.pop(key, None)
            if last is not None and now - last < TTL_REFRESH:
                self._ttl_set[key] = last  # re-inserted: now the most recently published
                return False
            self._ttl_set[key] = now
            if len(self._ttl_set) > TTL_MEMORY:
                # The least recently published: dicts keep insertion order.
                del self._ttl_set[next(iter(self._ttl_set))]
            return True

    def _forget_ttl(self, key: str) -> None:
        with self._ttl_lock:
            self._ttl_set.pop(key, None)

    def publish(self, key: str, event: RelayEvent) -> None:
        name, fields, entry_id = _entry(key, event)
        with self._publishing(key):
            if self._needs_ttl(key):
                # One round trip either way; the EXPIRE only once per stream (and refresh).
                pipe = self._client.pipeline(transaction=False)
                pipe.xadd(name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True)
                pipe.expire(name, int(ACTIVE_TTL))
                pipe.execute()
            else:
                self._client.xadd(name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True)

    async def apublish(self, key: str, event: RelayEvent) -> None:
        client = self._publisher()
        name, fields, entry_id = _entry(key, event)
        with self._publishing(key):
            if self._needs_ttl(key):
                async with client.pipeline(transaction=False) as pipe:
                    pipe.xadd(name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True)
                    pipe.expire(name, int(ACTIVE_TTL))
                    await pipe.execute()
            else:
                await client.xadd(name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True)

    @contextlib.contextmanager
    def _publishing(self, key: str) -> Iterator[None]:
        try:
            yield
        except redis.ResponseError:
            # An id at or below the stream's top: a duplicate publish. Readers already
            # have that text, and the database keeps the truth.
            logger.warning("Relay refused an out-of-order event for stream %s.", key)
        except redis.RedisError:
            # Perhaps no EXPIRE got through: the next publish sends it again.
            self._forget_ttl(key)
            raise

    def _publisher(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._publishers.get(loop)
        if client is None:
            client = redis.asyncio.Redis.from_url(self.url, decode_responses=True)
            self._publishers[loop] = client
        return client

    async def aclose_publisher(self) -> None:
        client = self._publishers.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def complete(self, key: str) -> None:
        name = _stream_name(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(name, {"done": "1"}, id="*", maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(name, int(COMPLETED_TTL))
        pipe.delete(_cancel_name(key))
        pipe.execute()
        self._forget_ttl(key)

    def request_cancel(self, key: str) -> None:
        self._client.set(_cancel_name(key), "1", ex=int(ACTIVE_TTL))

    def cancel_requested(self, key: str) -> bool:
        return bool(self._client.exists(_cancel_name(key)))

    def mark_started(self, key: str) -> None:
        # A list, not a key to poll: the waiting send's BLPOP returns the moment it gets
        # an item, or at once if the mark came first.
        name = _started_name(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.rpush(name, "1")
        pipe.expire(name, int(STARTED_TTL))
        pipe.execute()

    def wait_started(self, key: str, timeout: float) -> bool:
        # The deadline is kept here, not by BLPOP's own timeout: Redis ends blocked
        # commands on its 10 Hz timer, so a 50 ms BLPOP returned after 100 ms.
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command("BLPOP", _started_name(key), STARTED_BLOCK)
            if connection.can_read(timeout=max(timeout, 0.0)):
                return connection.read_response() is not None
            connection.disconnect()  # its BLPOP is still pending: drop it with the socket
            return False
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    async def follow(
        self, key: str, *, after: int, idle: float
    ) -> AsyncIterator[RelayEvent | None]:
        entry = self._enter()
        follower = entry.client.add(_stream_name(key), after)
        try:
            while True:
                events = merge_contiguous(follower.take())  # one frame for a backlog
                for event in events:
                    yield event
                if events:
                    continue  # more may have come while the caller had them
                if follower.done:
                    return
                if follower.error is not None:
                    raise follower.error
                if not await follower.wait(idle):
                    yield None
        finally:
            entry.client.remove(follower)
            await self._leave(entry)
