"""The stream relay: carries text deltas from the worker generating a message to the
SSE views of every browser watching it.

Event ids are text offsets: an event with id N ends at character N of the message, so
`id - len(text)` is where it starts. The database keeps the same text, which makes a
resume exact: a client that saw id N needs `content[N:]`, wherever it comes from.

Two backends behind one interface: in-process (the embedded deployment, where the huey
consumer threads live in the web server process) and Redis Streams (scale-out, where
workers are separate processes). `get_relay()` picks one from `settings.REDIS_URL`.
Streams are named by the message's random `stream_key`, not its id: SQLite can reuse
the id of a deleted row, and a new message must never see an old message's events.
The relay is a fan-out of hints; the database row stays the source of truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

# How long a finished message's events stay readable for late or reconnecting readers.
COMPLETED_TTL = 120.0
# How long an unfinished stream's events stay around if its worker vanished.
ACTIVE_TTL = 3600.0
MAX_EVENTS = 20_000  # per message; older ones are read back from the database
# How long a start mark nobody waits for is kept (an API call's answer, a send whose
# wait ended first).
STARTED_TTL = 60.0
STARTED_KEPT = 1_000  # in process


@dataclass(frozen=True)
class RelayEvent:
    id: int  # text offset where this delta ends
    text: str

    @property
    def start(self) -> int:
        return self.id - len(self.text)


class Relay(Protocol):
    def publish(self, key: str, event: RelayEvent) -> None: ...

    async def apublish(self, key: str, event: RelayEvent) -> None:
        """`publish` from an event loop (the stream loop), without blocking it."""

    async def aclose_publisher(self) -> None:
        """Close what `apublish` opened on the running loop (before the loop closes)."""

    def complete(self, key: str) -> None:
        """Mark the stream finished: readers drain what is left and stop."""

    def request_cancel(self, key: str) -> None: ...

    def cancel_requested(self, key: str) -> bool: ...

    def mark_started(self, key: str) -> None:
        """The answer's upstream request is out, or the answer is over (handoff.py)."""
        ...

    def wait_started(self, key: str, timeout: float) -> bool:
        """Block until `mark_started(key)`, at most `timeout` seconds; False if it did
        not come. One waiter per key: the send that queued the answer."""
        ...

    def ping(self) -> None:
        """Raise if the relay cannot be reached (for /healthz)."""

    def follow(self, key: str, *, after: int, idle: float) -> AsyncIterator[RelayEvent | None]:
        """Yield events with id > after as they arrive, None after `idle` seconds
        without any (time for a heartbeat), and stop once the stream is complete."""
        ...


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


def merge_contiguous(events: list[RelayEvent]) -> list[RelayEvent]:
    """Deltas that follow each other as one: a reader that fell behind (a busy server)
    catches up with one SSE frame, not one per token. Offsets keep it exact."""
    merged: list[RelayEvent] = []
    for event in events:
        last = merged[-1] if merged else None
        if last is not None and event.start == last.id:
            merged[-1] = RelayEvent(event.id, last.text + event.text)
        else:
            merged.append(event)
    return merged


class InProcessRelay:
    """Thread-safe: published from worker threads, followed from the server's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._cancelled: dict[str, float] = {}
        # Start marks (handoff.py), oldest first: those nobody waited for are dropped
        # past STARTED_KEPT.
        self._started: OrderedDict[str, threading.Event] = OrderedDict()

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

    def _started_event(self, key: str) -> threading.Event:
        with self._lock:
            event = self._started.get(key)
            if event is None:
                event = self._started[key] = threading.Event()
                while len(self._started) > STARTED_KEPT:
                    self._started.popitem(last=False)
            return event

    def mark_started(self, key: str) -> None:
        self._started_event(key).set()

    def wait_started(self, key: str, timeout: float) -> bool:
        came = self._started_event(key).wait(timeout)
        with self._lock:
            self._started.pop(key, None)
        return came

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


_relays: dict[str, Relay] = {}
_relays_lock = threading.Lock()


def get_relay() -> Relay:
    """The relay for the current settings (read at call time so tests can switch)."""
    url = settings.REDIS_URL
    with _relays_lock:
        relay = _relays.get(url)
        if relay is None:
            if url:
                from generation.relay_redis import RedisRelay

                relay = RedisRelay(url)
            else:
                relay = InProcessRelay()
            _relays[url] = relay
        return relay
