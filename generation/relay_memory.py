"""The in-process stream relay (the embedded deployment: the huey consumer threads live
in the web server process)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from generation.relay_base import (
    ACTIVE_TTL,
    COMPLETED_TTL,
    MAX_EVENTS,
    RelayEvent,
    merge_contiguous,
)


@dataclass
class _Channel:
    events: deque[RelayEvent] = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    completed: bool = False
    touched: float = field(default_factory=time.monotonic)
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=set
    )


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class InProcessRelay:
    """Thread-safe: published from worker threads, followed from the server's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._cancelled: dict[str, float] = {}

    def _channel(self, key: str) -> _Channel:
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = _Channel()
        channel.touched = time.monotonic()
        return channel

    def _notify(self, channel: _Channel) -> None:
        # One wake-up per loop, not per reader: each call_soon_threadsafe writes to the
        # loop's self-pipe, and a hundred tabs on one answer would be a hundred writes.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for loop, future in channel.waiters:
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            # A RuntimeError means that reader's loop is closed: it is gone.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, futures)
        channel.waiters.clear()

    def _collect_garbage(self) -> None:
        now = time.monotonic()
        for key, channel in list(self._channels.items()):
            ttl = COMPLETED_TTL if channel.completed else ACTIVE_TTL
            if now - channel.touched > ttl and not channel.waiters:
                del self._channels[key]
        for key, at in list(self._cancelled.items()):
            if now - at > ACTIVE_TTL:
                del self._cancelled[key]

    def ping(self) -> None:
        """Always reachable: it lives in this process."""

    def publish(self, key: str, event: RelayEvent) -> None:
        with self._lock:
            channel = self._channel(key)
            channel.events.append(event)
            self._notify(channel)

    async def apublish(self, key: str, event: RelayEvent) -> None:
        self.publish(key, event)  # in memory: nothing to wait for

    async def aclose_publisher(self) -> None:
        """Nothing to close."""

    def complete(self, key: str) -> None:
        with self._lock:
            channel = self._channel(key)
            channel.completed = True
            self._notify(channel)
            self._cancelled.pop(key, None)
            self._collect_garbage()

    def request_cancel(self, key: str) -> None:
        with self._lock:
            self._cancelled[key] = time.monotonic()

    def cancel_requested(self, key: str) -> bool:
        return key in self._cancelled

    def _events_after(self, channel: _Channel, after: int) -> list[RelayEvent]:
        # Walk back from the newest event: a reader usually needs only the last few.
        found: list[RelayEvent] = []
        for event in reversed(channel.events):
            if event.id <= after:
                break
            found.append(event)
        found.reverse()
        return merge_contiguous(found)

    async def follow(
        self, key: str, *, after: int, idle: float
    ) -> AsyncIterator[RelayEvent | None]:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                channel = self._channel(key)
                events = self._events_after(channel, after)
                completed = channel.completed
                future: asyncio.Future[None] | None = None
                if not events and not completed:
                    future = loop.create_future()
                    channel.waiters.add((loop, future))
            for event in events:
                yield event
                after = event.id
            if events:
                continue
            if completed:
                return
            assert future is not None
            try:
                async with asyncio.timeout(idle):  # lighter than wait_for, once per event
                    await future
            except TimeoutError:
                yield None
            finally:
                with self._lock:
                    channel.waiters.discard((loop, future))
