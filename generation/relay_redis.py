"""The Redis Streams relay: one stream per message, entry id "<offset>-0" = SSE event id.

Delta entries carry explicit ids (the text offset), so any web process can resume a
reader with XREAD from "<last id>-0"; an answer's text is field "t", reasoning field "r".
Completion appends an entry with an automatic (millisecond clock) id, always above any
text offset, then the stream expires.

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
from typing import TYPE_CHECKING

import redis
import redis.asyncio

from generation.relay_base import (
    ACTIVE_TTL,
    COMPLETED_TTL,
    MAX_EVENTS,
    RelayEvent,
    merge_contiguous,
)
from generation.relay_redis_reader import SharedReader

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

logger = logging.getLogger(__name__)

# A publisher gives a stream its TTL with its first event, and again this long after (a
# generation running past ACTIVE_TTL keeps its stream), not with every delta.
TTL_REFRESH = ACTIVE_TTL / 4
# Streams whose TTL a publisher remembers; a forgotten one just gets EXPIRE again.
TTL_MEMORY = 10_000
# The longest a relay command (a publish, a cancel flag) waits for Redis.
COMMAND_TIMEOUT = 5.0


@dataclass
class _LoopClient:
    # The loop's shared reader: it owns the loop's (two) Redis connections.
    client: SharedReader
    readers: int = 0  # follow() calls on the loop


@contextlib.asynccontextmanager
async def _timeout_as_redis_error(seconds: float) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise redis.TimeoutError(f"Redis did not answer within {seconds} s.") from None


class RedisRelay:
    def __init__(
        self, url: str, *, prefix: str = "switchboard:relay:", timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self.url = url
        # Every key of ours starts with it (REDIS_KEY_PREFIX: deployments sharing a Redis).
        self.prefix = prefix
        self.timeout = timeout
        # A bounded connect and read: an unreachable Redis, or a half-open connection
        # that never answers, fails a publish or a cancel check instead of holding the
        # worker thread that made it.
        self._client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=timeout, socket_timeout=timeout
        )
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

    def stream_name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _entry(self, key: str, event: RelayEvent) -> tuple[str, dict[FieldT, EncodableT], str]:
        """XADD's stream, fields and explicit id (the text offset) for a delta."""
        field = "r" if event.reasoning else "t"
        return self.stream_name(key), {field: event.text}, f"{event.id}-0"

    def _cancel_name(self, key: str) -> str:
        return f"{self.prefix}{key}:cancel"

    def _enter(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._loop_clients_lock:
            entry = self._loop_clients.get(loop)
            if entry is None:
                entry = self._loop_clients[loop] = _LoopClient(
                    SharedReader(
                        self.url,
                        # Each web process's reader wakes itself through a stream of its own.
                        f"{self.prefix}wake:",
                    )
                )
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
        name, fields, entry_id = self._entry(key, event)
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
        name, fields, entry_id = self._entry(key, event)
        # Timed here rather than with the async client's socket_timeout, which wraps each
        # read in wait_for(): on Python 3.11 that can swallow the cancellation that stops
        # an answer (see relay_redis_reader.READ_TIMEOUT).
        with self._publishing(key):
            async with _timeout_as_redis_error(self.timeout):
                if self._needs_ttl(key):
                    async with client.pipeline(transaction=False) as pipe:
                        pipe.xadd(name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True)
                        pipe.expire(name, int(ACTIVE_TTL))
                        await pipe.execute()
                else:
                    await client.xadd(
                        name, fields, id=entry_id, maxlen=MAX_EVENTS, approximate=True
                    )

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
            client = redis.asyncio.Redis.from_url(
                self.url, decode_responses=True, socket_connect_timeout=self.timeout
            )
            self._publishers[loop] = client
        return client

    async def aclose_publisher(self) -> None:
        client = self._publishers.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def complete(self, key: str) -> None:
        name = self.stream_name(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(name, {"done": "1"}, id="*", maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(name, int(COMPLETED_TTL))
        pipe.delete(self._cancel_name(key))
        pipe.execute()
        self._forget_ttl(key)

    def request_cancel(self, key: str) -> None:
        self._client.set(self._cancel_name(key), "1", ex=int(ACTIVE_TTL))

    def cancel_requested(self, key: str) -> bool:
        return bool(self._client.exists(self._cancel_name(key)))

    async def follow(
        self, key: str, *, after: int, idle: float
    ) -> AsyncIterator[RelayEvent | None]:
        entry = self._enter()
        follower = entry.client.add(self.stream_name(key), after)
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
