"""The Redis Streams relay: one stream per message, entry id "<offset>-0" = SSE event id.

Delta entries carry explicit ids (the text offset), so any web process can resume a
reader with XREAD from "<last id>-0". Completion appends an entry with an automatic
(millisecond clock) id, always above any text offset, then the stream expires.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from generation.relay import ACTIVE_TTL, COMPLETED_TTL, MAX_EVENTS, RelayEvent

logger = logging.getLogger(__name__)

PREFIX = "switchboard:relay:"
# Open streams one web process may follow at once (Redis's own maxclients is 10,000).
READER_MAX_CONNECTIONS = 10_000


def _stream_name(key: str) -> str:
    return f"{PREFIX}{key}"


def _cancel_name(key: str) -> str:
    return f"{PREFIX}{key}:cancel"


@dataclass
class _LoopClient:
    client: aioredis.Redis
    readers: int = 0


class RedisRelay:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client = redis.Redis.from_url(url, decode_responses=True)
        # asyncio clients belong to the loop that made them: one per loop, shared by the
        # readers on it (each blocking XREAD takes a pooled connection of its own, but
        # connections are reused instead of made, and closed, per reader). The last
        # reader to leave closes it, so no connection outlives its loop.
        self._loop_clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}
        self._loop_clients_lock = threading.Lock()

    def _enter(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._loop_clients_lock:
            entry = self._loop_clients.get(loop)
            if entry is None:
                # Every open stream blocks in XREAD on a connection of its own, so the
                # pool must not cap them at redis-py's default of 100.
                client = aioredis.from_url(
                    self.url, decode_responses=True, max_connections=READER_MAX_CONNECTIONS
                )
                entry = self._loop_clients[loop] = _LoopClient(client)
            entry.readers += 1
            return entry

    async def _leave(self, entry: _LoopClient) -> None:
        loop = asyncio.get_running_loop()
        with self._loop_clients_lock:
            entry.readers -= 1
            if entry.readers > 0:
                return
            if self._loop_clients.get(loop) is entry:
                del self._loop_clients[loop]
        await entry.client.aclose()

    def ping(self) -> None:
        self._client.ping()

    def publish(self, key: str, event: RelayEvent) -> None:
        name = _stream_name(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(name, {"t": event.text}, id=f"{event.id}-0", maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(name, int(ACTIVE_TTL))
        try:
            pipe.execute()
        except redis.ResponseError:
            # An id at or below the stream's top: a duplicate publish. Readers already
            # have that text, and the database keeps the truth.
            logger.warning("Relay refused an out-of-order event for stream %s.", key)

    def complete(self, key: str) -> None:
        name = _stream_name(key)
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(name, {"done": "1"}, id="*", maxlen=MAX_EVENTS, approximate=True)
        pipe.expire(name, int(COMPLETED_TTL))
        pipe.delete(_cancel_name(key))
        pipe.execute()

    def request_cancel(self, key: str) -> None:
        self._client.set(_cancel_name(key), "1", ex=int(ACTIVE_TTL))

    def cancel_requested(self, key: str) -> bool:
        return bool(self._client.exists(_cancel_name(key)))

    async def follow(
        self, key: str, *, after: int, idle: float
    ) -> AsyncIterator[RelayEvent | None]:
        entry = self._enter()
        name = _stream_name(key)
        cursor = f"{after}-0"
        block = max(1, int(idle * 1000))
        try:
            while True:
                reply = await entry.client.xread({name: cursor}, count=1000, block=block)
                if not reply:
                    yield None
                    continue
                for entry_id, fields in reply[0][1]:
                    if "done" in fields:
                        return
                    cursor = entry_id
                    yield RelayEvent(int(entry_id.split("-", 1)[0]), fields.get("t", ""))
        finally:
            await self._leave(entry)
