"""The huey consumer running inside the web process (the embedded deployment).

Started through huey's public API (`huey.create_consumer(...).start()`), which also
installs the consumer's signal handlers: those of a standalone `run_huey`. Inside
uvicorn the server owns SIGINT and SIGTERM and stops the consumer itself on lifespan
shutdown, so the handlers in place before the start are put back right after it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.utils.module_loading import autodiscover_modules
from huey.consumer import Consumer

logger = logging.getLogger(__name__)

_consumer: Consumer | None = None
_lock = threading.Lock()

# Those huey's Consumer.start() installs handlers for (SIGHUP where the OS has it).
_SIGNALS = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]


def embedded_worker_enabled() -> bool:
    # With Redis, workers are separate `run_huey` processes; without it, one in here.
    return bool(settings.EMBEDDED_WORKER)


@contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("Start the embedded worker from the main thread (signal handlers).")
    kept = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)


def create_consumer(**overrides: Any) -> Consumer:
    """A thread consumer with the settings' options (HUEY["consumer"]), as run_huey has."""
    from huey.contrib.djhuey import HUEY

    # Every app's tasks registered, as run_huey does before it starts: the scheduler
    # enqueues only the periodic tasks registered when it looks (at start, then each
    # minute). Registration must not wait for some request to import a tasks module: a
    # process restarted after a crash, with no sends yet, never ran the sweep.
    autodiscover_modules("tasks")

    options: dict[str, Any] = {
        **settings.HUEY.get("consumer", {}),
        "worker_type": "thread",
        # Generation in flight past this is interrupted (text kept) by begin_shutdown.
        "shutdown_timeout": 5,
        **overrides,
    }
    return HUEY.create_consumer(**options)


def start_consumer(consumer: Consumer) -> None:
    """Start `consumer`'s threads, leaving the process's signal handlers as they were."""
    with _signal_handlers_kept():
        consumer.start()


def stop_consumer(consumer: Consumer) -> None:
    """Stop as a web process stops: answers still streaming near the deadline end as
    interrupted, with their text and metering, then the threads are joined."""
    from generation import stream_loop
    from generation.runner import begin_shutdown_of, cancel_shutdown

    begin_shutdown_of(consumer)
    try:
        consumer.stop_flag.set()
        # Idle worker threads wait on the queue for seconds (generation/huey_storage.py):
        # wake them so they see the flag now rather than at the end of their wait.
        wake_all = getattr(consumer.huey.storage, "wake_all", None)
        if wake_all is not None:
            wake_all()
        consumer.stop(graceful=True)
    finally:
        # The workers are done: the loop their answers streamed on can go (a later
        # answer starts a new one), and a later consumer in this process starts afresh.
        stream_loop.stop()
        cancel_shutdown()


def start() -> None:
    global _consumer
    with _lock:
        if _consumer is not None or not embedded_worker_enabled():
            return
        consumer = create_consumer()
        start_consumer(consumer)
        _consumer = consumer
    logger.info("Started the embedded task worker (%s threads).", consumer.workers)


def stop() -> None:
    global _consumer
    with _lock:
        consumer, _consumer = _consumer, None
    if consumer is None:
        return
    stop_consumer(consumer)
    logger.info("Stopped the embedded task worker.")


async def lifespan(receive: Any, send: Any) -> None:
    from asgiref.sync import sync_to_async

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                if embedded_worker_enabled():
                    # This process runs every worker of the embedded deployment: answers
                    # still "streaming" are a killed process's, and end now rather than
                    # at the sweep that finds them stale. Before the consumer starts:
                    # its workers at once claim the answers still queued, and those are
                    # not orphans.
                    from generation.sweeper import interrupt_orphaned_answers

                    await sync_to_async(interrupt_orphaned_answers)()
                # On this (the main) thread: see _signal_handlers_kept.
                start()
            except Exception as exc:  # report to the server rather than crash silently
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await sync_to_async(stop, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return
