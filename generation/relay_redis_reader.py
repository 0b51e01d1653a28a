"""One shared XREAD for all the relay streams followed on an event loop.

A web process may hold a thousand open SSE streams. Giving each its own blocking XREAD
costs a Redis connection per stream and a round trip per delta per stream. Instead, one
task per event loop (`SharedReader`) blocks in a single `XREAD` over every stream
followed on that loop, each stream at the lowest position any of its followers needs,
and hands each entry to the followers that have not seen it. A follower is one
`follow()` call: its own position and a local list of events, woken by a future.

New followers must not wait for the current blocking read to time out. The reader also
reads a small "wake" stream of its own; a follower that joins while a read is in flight
appends an entry to it (from a second pooled connection), which ends that read at once.
Unlike `CLIENT UNBLOCK`, this cannot race: an entry added before the read reaches Redis
makes it return immediately, because the read asks for entries after the last one seen.

The reader starts with the first follower and its owner stops it (closing both
connections) when the last one leaves, so no connection outlives its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis

from generation.relay_base import RelayEvent

if TYPE_CHECKING:
    from redis.typing import KeyT, StreamIdT

logger = logging.getLogger(__name__)

# A stream entry id, "<ms>-<seq>", as a tuple that compares in stream order.
EntryId = tuple[int, int]

# How long one XREAD blocks when nothing arrives. Joins wake the reader at once, so this
# only bounds the delay a lost wake-up (Redis restarted in between) could cause.
BLOCK_MS = 1000
# Entries per stream per read: a follower resuming far back catches up over a few reads.
COUNT = 1000
# A blocked read answers within BLOCK_MS; silence well beyond that is a dead connection.
# Timed here, not with redis-py's socket_timeout: that wraps each send in wait_for(),
# which on Python 3.11 can swallow a cancellation (the reader would not stop).
READ_TIMEOUT = BLOCK_MS / 1000 + 10
# The reader's blocking connection and one for wake-ups (and the final clean-up).
MAX_CONNECTIONS = 2
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
# The wake stream of a process that died goes away on its own.
WAKE_TTL = 600


def parse_entry_id(entry_id: str) -> EntryId:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def format_entry_id(position: EntryId) -> str:
    return f"{position[0]}-{position[1]}"


def client_name() -> str:
    # Named per process, so that `CLIENT LIST` shows whose connections these are.
    return f"switchboard-relay-reader-{os.getpid()}"


class Follower:
    """One `follow()` call: where it is in its stream, and what waits for it."""

    def __init__(self, name: str, after: int) -> None:
        self.name = name
        # The last entry handed to this follower: entries at or below it are skipped.
        self.position: EntryId = (after, 0)
        self.done = False
        self.error: BaseException | None = None
        self._pending: list[RelayEvent] = []
        self._waiter: asyncio.Future[None] | None = None

    def deliver(self, position: EntryId, event: RelayEvent | None) -> None:
        """Hand over one entry (None: the stream is complete) if it is new to us."""
        if self.done or position <= self.position:
            return  # read again for another follower of the same stream that is behind
        self.position = position
        if event is None:
            self.done = True
        else:
            self._pending.append(event)
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._wake()

    def take(self) -> list[RelayEvent]:
        events, self._pending = self._pending, []
        return events

    async def wait(self, idle: float) -> bool:
        """Wait for something to take; False when `idle` seconds passed without."""
        if self._pending or self.done or self.error is not None:
            return True
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(idle):
                await self._waiter
        except TimeoutError:
            return False
        finally:
            self._waiter = None
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class SharedReader:
    """The reader of one event loop: one task, one blocking XREAD for all its streams.

    Not thread-safe: it belongs to the loop it was first used on, like its connections.
    """

    def __init__(self, url: str, wake_prefix: str) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=MAX_CONNECTIONS,
            client_name=client_name(),
        )
        # from_pool: closing the client disconnects the pool, it is ours alone.
        self.client = aioredis.Redis.from_pool(pool)
        self.wake_key = f"{wake_prefix}{uuid.uuid4().hex}"
        self.stopped = False
        self._followers: dict[str, set[Follower]] = {}
        self._task: asyncio.Task[None] | None = None
        self._reading = False  # an XREAD is in flight, sent with the streams of then
        self._wake_cursor = "0-0"
        self._wake_pending = False  # a wake entry was sent that the reader has not seen
        self._wake_sent = False
        self._wake_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def add(self, name: str, after: int) -> Follower:
        """Follow stream `name` from entry `after`-0; served from the next read on."""
        follower = Follower(name, after)
        self._followers.setdefault(name, set()).add(follower)
        if not self.running:
            # The first follower, or the reader died of a bug its followers were told of.
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._reading:
            self._wake()
        return follower

    def remove(self, follower: Follower) -> None:
        # No wake-up: entries of a stream nobody follows are dropped when they come.
        followers = self._followers.get(follower.name)
        if followers is None:
            return
        followers.discard(follower)
        if not followers:
            del self._followers[follower.name]

    async def stop(self) -> None:
        """End the reader and close its connections (when its last follower left)."""
        self.stopped = True
        for task in (self._task, self._wake_task):
            if task is not None:
                await _cancel(task)
        if self._wake_sent:
            with contextlib.suppress(redis.RedisError):  # else it expires (WAKE_TTL)
                await self.client.delete(self.wake_key)
        await self.client.aclose()

    async def _run(self) -> None:
        backoff = BACKOFF_MIN
        task = asyncio.current_task()
        assert task is not None
        try:
            # cancelling(): a cancellation that did not end the read still ends the loop.
            # (Seen in the suite: asyncio.run's shutdown hung on a reader that went on
            # reading after its cancel; the cause was not pinned down.)
            while not self.stopped and not task.cancelling():
                streams = self._cursors()
                self._reading = True
                try:
                    async with asyncio.timeout(READ_TIMEOUT):
                        reply = await self.client.xread(streams, count=COUNT, block=BLOCK_MS)
                except (redis.RedisError, OSError, TimeoutError) as exc:
                    # Followers keep their positions and heartbeats; after a reconnect
                    # they go on from where they were. The type only: no key material.
                    logger.warning(
                        "Relay reader: Redis failed (%s); retrying in %.1f s.",
                        type(exc).__name__,
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                    continue
                finally:
                    self._reading = False
                backoff = BACKOFF_MIN
                self._dispatch(reply)
        except Exception as exc:
            # A bug, not Redis: tell every follower instead of leaving them hanging.
            logger.exception("Relay reader stopped")
            for followers in self._followers.values():
                for follower in followers:
                    follower.fail(exc)

    def _cursors(self) -> dict[KeyT, StreamIdT]:
        """Each followed stream at the lowest position one of its followers needs."""
        cursors: dict[KeyT, StreamIdT] = {}
        for name, followers in self._followers.items():
            positions = [f.position for f in followers if not f.done]
            if positions:
                cursors[name] = format_entry_id(min(positions))
        cursors[self.wake_key] = self._wake_cursor
        return cursors

    def _dispatch(self, reply: Any) -> None:
        # RESP2 answers a list of [name, entries]; RESP3 a mapping of name to entries.
        streams = reply.items() if isinstance(reply, dict) else (reply or [])
        for name, entries in streams:
            if name == self.wake_key:
                self._wake_cursor = entries[-1][0]
                # Seen: the next read is built after this, with every follower joined so
                # far (no await in between), so a new join needs a new wake-up.
                self._wake_pending = False
                continue
            followers = self._followers.get(name)
            if followers:
                _deliver(entries, followers)

    def _wake(self) -> None:
        if self._wake_pending:
            return  # the one in flight ends the current read just as well
        self._wake_pending = True
        self._wake_task = asyncio.get_running_loop().create_task(self._send_wake())

    async def _send_wake(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.wake_key, {"w": "1"}, maxlen=1, approximate=False)
        pipe.expire(self.wake_key, WAKE_TTL)
        self._wake_sent = True
        try:
            await pipe.execute()
        except redis.RedisError as exc:
            # The joiner waits for the current read to time out (BLOCK_MS) instead.
            logger.warning("Relay reader: wake-up failed (%s).", type(exc).__name__)
            self._wake_pending = False


async def _cancel(task: asyncio.Task[None]) -> None:
    # Insist: Python 3.11's wait_for() loses a cancellation that lands as its work
    # completes (redis-py sends with it when a socket timeout is set; other code may
    # too). wait(), not await: a cancellation of the caller must not be swallowed.
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)


def _deliver(entries: Sequence[tuple[str, dict[str, str]]], followers: Iterable[Follower]) -> None:
    for entry_id, fields in entries:
        position = parse_entry_id(entry_id)
        # A delta's id is its text offset; the "done" entry has a clock id above them all.
        event = None if "done" in fields else _event(position[0], fields)
        for follower in followers:
            follower.deliver(position, event)


def _event(offset: int, fields: dict[str, str]) -> RelayEvent:
    if "r" in fields:  # a piece of the reasoning (see relay_redis)
        return RelayEvent(offset, fields["r"], reasoning=True)
    return RelayEvent(offset, fields.get("t", ""))
