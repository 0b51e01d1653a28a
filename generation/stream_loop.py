"""One event loop per process that reads every answer being streamed from upstream.

A huey worker thread claims a message and does its database work (the setup, the
periodic saves, the finish) in plain sync code; the upstream stream itself runs as a
task on this loop, which publishes each delta to the relay as it arrives.

Why one loop and not one per worker thread: SDK clients and their connection pools
belong to a loop. With a loop per thread (64 by default), consecutive answers landed on
different threads, and most of them opened a new connection to the provider (a TCP and
TLS handshake before the first token), until every thread had one, and again whenever
a thread's connection had idled out. On one loop the answers share one client per
provider and its warm connections.

The loop runs on a daemon thread started on first use. `stop()` closes the SDK clients
on it and ends it (the embedded consumer's stop, once its workers are done); a later
answer starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(_close_clients())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _close_clients() -> None:
    from generation.relay import get_relay
    from providers.adapters.clients import aclose_clients

    await aclose_clients()
    await get_relay().aclose_publisher()


def stream_loop() -> asyncio.AbstractEventLoop:
    """The process's stream loop, started if it is not running."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(
                target=_run, args=(loop, started), name="stream-loop", daemon=True
            )
            thread.start()
            started.wait(5)
            _loop, _thread = loop, thread
        return _loop


def submit(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Run `coroutine` on the stream loop; its result (or exception) in the future."""
    return asyncio.run_coroutine_threadsafe(coroutine, stream_loop())


def stop(timeout: float = 5.0) -> None:
    """End the loop; its thread closes the clients on it first."""
    global _loop, _thread
    with _lock:
        loop, thread = _loop, _thread
        _loop = _thread = None
    if loop is None or thread is None or not thread.is_alive():
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)
    if thread.is_alive():
        logger.warning("The stream loop did not stop within %.0f s.", timeout)
