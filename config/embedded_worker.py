"""The huey consumer running inside the web process (the embedded deployment)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from huey.consumer import Consumer

from generation import handoff

logger = logging.getLogger(__name__)

_consumer: Any = None


class EmbeddedConsumer(Consumer):
    """A huey consumer that leaves signal handling to the server it runs inside."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._counted = False  # in handoff's count of consumers in this process

    def _set_signal_handlers(self) -> None:
        pass

    def start(self) -> None:
        super().start()
        # Sends in this process may now wait for their answers' start (handoff.py).
        handoff.local_consumer_started()
        self._counted = True

    def stop(self, graceful: bool = False) -> None:
        if self._counted:
            self._counted = False
            handoff.local_consumer_stopped()
        self.stop_flag.set()
        # Idle worker threads wait on the queue for seconds (generation/queue.py): wake
        # them so they see the flag now rather than at the end of their wait.
        wake_all = getattr(self.huey.storage, "wake_all", None)
        if wake_all is not None:
            wake_all()
        super().stop(graceful=graceful)
        # The workers are done: the loop their answers streamed on can go (a later
        # answer starts a new one).
        from generation import stream_loop

        stream_loop.stop()


def embedded_worker_enabled() -> bool:
    # With Redis, workers are separate `run_huey` processes; without it, one in here.
    return settings.EMBEDDED_WORKER


def start() -> None:
    global _consumer
    if _consumer is not None or not embedded_worker_enabled():
        return
    from huey.contrib.djhuey import HUEY

    options = settings.HUEY.get("consumer", {})
    _consumer = EmbeddedConsumer(
        HUEY,
        workers=options.get("workers", 64),
        worker_type="thread",
        periodic=True,
        # Generation in flight past this is failed or re-run by the sweeper later.
        shutdown_timeout=options.get("shutdown_timeout", 5),
    )
    _consumer.start()
    logger.info("Started the embedded task worker (%s threads).", options.get("workers", 64))


def stop() -> None:
    global _consumer
    if _consumer is None:
        return
    from generation.runner import begin_shutdown

    # Answers still streaming near the deadline end as failed (retryable, text kept)
    # instead of being cut off mid-save; the consumer then waits for them.
    begin_shutdown(grace=max(_consumer.shutdown_timeout - 1, 0))
    _consumer.stop(graceful=True)
    _consumer = None
    logger.info("Stopped the embedded task worker.")


async def lifespan(receive: Any, send: Any) -> None:
    from asgiref.sync import sync_to_async

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await sync_to_async(start, thread_sensitive=False)()
            except Exception as exc:  # report to the server rather than crash silently
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await sync_to_async(stop, thread_sensitive=False)()
            await send({"type": "lifespan.shutdown.complete"})
            return
