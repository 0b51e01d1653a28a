"""Generating one assistant message on a huey worker thread.

The worker thread drives the engine's async stream on an event loop of its own (kept
for the thread's life, so the engine's per-loop SDK clients and their connection pools
are reused from one message to the next). A task on that loop reads the stream into a
queue; the thread enters the loop for one poll window (CANCEL_POLL) at a time, relays
the deltas that arrived, and does its database work in plain sync code between
windows, so a stop request is noticed promptly even while the upstream is silent.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from django.utils import timezone

from config.db import release_connection
from generation.models import Message
from generation.relay import Relay, RelayEvent, get_relay
from generation.services import build_request
from generation.signals import generation_finished
from providers.adapters.base import GenerationResult, TextDelta, Usage
from providers.errors import ErrorKind, ProviderError

logger = logging.getLogger(__name__)

SAVE_INTERVAL = 0.25  # seconds between saves of the accumulated text
HEARTBEAT_INTERVAL = 5.0  # a save even without new text, so the sweeper sees us alive
CANCEL_POLL = 0.1  # relay flag check (cheap)
DB_CANCEL_POLL = 1.0  # database check: a deleted row, or a flag the relay missed

# Set when the process is shutting down: generations still running at the deadline
# stop, keep their text and end as failed-retryable, instead of being cut off silently.
_shutdown_deadline: float | None = None
INTERRUPTED = "The answer was interrupted by a server restart."


_thread = threading.local()


def _worker_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        loop = _thread.loop = asyncio.new_event_loop()
    return loop


def close_worker_loop() -> None:
    """Close this thread's loop and the SDK clients on it (a huey shutdown hook)."""
    from providers.adapters.clients import aclose_clients

    loop = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        return
    try:
        loop.run_until_complete(aclose_clients())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        _thread.loop = None


def begin_shutdown(*, grace: float) -> None:
    """Give running generations `grace` seconds to finish, then stop them cleanly.

    Call before stopping the huey consumer (its graceful stop waits for tasks).
    """
    global _shutdown_deadline
    _shutdown_deadline = time.monotonic() + max(grace, 0.0)


def cancel_shutdown() -> None:
    global _shutdown_deadline
    _shutdown_deadline = None


def run_generation(*, message_id: int) -> None:
    now = timezone.now()
    # The idempotent claim: of two runs of this task, only one moves pending→streaming.
    claimed = Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING, started_at=now, updated_at=now
    )
    if not claimed:
        logger.info("Message %s was already claimed or stopped; nothing to do.", message_id)
        return
    # get(), not first(): first() orders the query, and compiling that ordering was
    # the costliest step of this task's setup (py-spy, chat_ttft).
    try:
        message = Message.objects.select_related("provider", "conversation__owner").get(
            pk=message_id
        )
    except Message.DoesNotExist:
        return  # deleted with its conversation while we started
    relay = get_relay()
    try:
        _Generation(message, relay).run()
    finally:
        relay.complete(message.relay_key)


def _stream(message: Message) -> AsyncIterator[TextDelta | GenerationResult]:
    from providers.engine import stream_generation

    return stream_generation(message.provider, build_request(message=message))


class _Generation:
    def __init__(self, message: Message, relay: Relay) -> None:
        self.message = message
        self.relay = relay
        self.text = ""
        self.saved_length = 0
        self.last_save = self.last_flag_check = self.last_db_check = time.monotonic()
        self.cancelled = False
        self.interrupted = False
        self.gone = False  # the row was deleted or taken over by the sweeper
        self.deleted = False

    def run(self) -> None:
        provider = self.message.provider
        if provider is None or not provider.is_active:
            error = ProviderError(ErrorKind.BAD_REQUEST, "That provider is no longer available.")
            self._finish(GenerationResult(text="", model=self.message.model, error=error))
            return
        result: GenerationResult | None = None
        try:
            result = self._drive(_worker_loop(), _stream(self.message))
        except Exception as exc:
            # The type only: exception text could quote the request.
            kind = type(exc).__name__
            logger.error("Generation of message %s crashed: %s", self.message.pk, kind)
            error = ProviderError(ErrorKind.UNKNOWN, "Unexpected error.")
            result = GenerationResult(text=self.text, model=self.message.model, error=error)
        if not self.gone:
            self._finish(result)
            return
        # Deleted (its conversation) or failed by the sweeper meanwhile: the upstream
        # call still happened and is metered.
        self.deleted = not Message.objects.filter(pk=self.message.pk).exists()
        self._record_usage(result)

    def _drive(
        self, loop: asyncio.AbstractEventLoop, stream: AsyncIterator[Any]
    ) -> GenerationResult | None:
        # One task reads the whole stream into a queue; the thread enters the loop once
        # per poll window (not once per token: entering a loop costs more than a token),
        # relays what arrived, then does its database checks in plain sync code.
        # The setup's queries are done: a pooled connection goes back while we wait on
        # upstream (64 answers at once need not hold 64 connections), and after each
        # save or check below. The next query takes one again.
        release_connection()
        items: asyncio.Queue[Any] = asyncio.Queue()
        reader = loop.create_task(_read_into(stream, items))
        try:
            while True:
                until = loop.time() + CANCEL_POLL
                ended, result = loop.run_until_complete(self._relay_until(items, until))
                if ended:
                    return result
                if self._should_stop():
                    return None
                self._maybe_save()
        finally:
            if not reader.done():
                # Cancelling the read stops the upstream request at once.
                reader.cancel()
                loop.run_until_complete(asyncio.wait({reader}))
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                loop.run_until_complete(aclose())

    async def _relay_until(
        self, items: asyncio.Queue[Any], until: float
    ) -> tuple[bool, GenerationResult | None]:
        """Relay deltas until `until` (loop time) or the end: (ended, result)."""
        while True:
            try:
                async with asyncio.timeout_at(until):
                    item = await items.get()
            except TimeoutError:
                return False, None
            # Deltas that arrived together (a busy process) go out as one relay event:
            # one publish (an XADD on Redis) and one SSE frame, not one per token.
            text = ""
            while True:
                if isinstance(item, _End):
                    self._on_delta(text)
                    if item.error is not None:
                        raise item.error
                    return True, None
                if isinstance(item, GenerationResult):
                    self._on_delta(text)
                    return True, item
                text += item.text
                if items.empty():
                    break
                item = items.get_nowait()
            self._on_delta(text)
            if time.monotonic() - self.last_save >= SAVE_INTERVAL:
                return False, None  # a save is due: a reload shows text at most this old

    def _on_delta(self, text: str) -> None:
        if not text:
            return
        self.text += text
        self.relay.publish(self.message.relay_key, RelayEvent(len(self.text), text))

    def _should_stop(self) -> bool:
        now = time.monotonic()
        if _shutdown_deadline is not None and now >= _shutdown_deadline:
            self.interrupted = True
            return True
        if now - self.last_flag_check >= CANCEL_POLL:
            self.last_flag_check = now
            self.cancelled = self.cancelled or self.relay.cancel_requested(self.message.relay_key)
        if not self.cancelled and now - self.last_db_check >= DB_CANCEL_POLL:
            self.last_db_check = now
            flags = Message.objects.values_list("cancel_requested", flat=True)
            try:
                self.cancelled = flags.get(pk=self.message.pk)
            except Message.DoesNotExist:
                self.gone = True
            release_connection()
        return self.cancelled or self.gone

    def _maybe_save(self) -> None:
        elapsed = time.monotonic() - self.last_save
        changed = len(self.text) != self.saved_length
        if (changed and elapsed >= SAVE_INTERVAL) or elapsed >= HEARTBEAT_INTERVAL:
            updated = Message.objects.filter(
                pk=self.message.pk, status=Message.Status.STREAMING
            ).update(content=self.text, updated_at=timezone.now())
            release_connection()
            self.gone = self.gone or not updated
            self.saved_length = len(self.text)
            self.last_save = time.monotonic()

    def _finish(self, result: GenerationResult | None) -> None:
        message = self.message
        if result is not None and result.text.startswith(self.text) and result.text != self.text:
            # e.g. a cached answer delivered whole: relay it so readers see it too.
            self._on_delta(result.text[len(self.text) :])
        error = result.error if result is not None else None
        if self.cancelled or (error is not None and error.kind == ErrorKind.CANCELLED):
            status, error = Message.Status.CANCELLED, None
        elif self.interrupted:
            status, error = Message.Status.FAILED, ProviderError(ErrorKind.TIMEOUT, INTERRUPTED)
        elif result is None:
            status = Message.Status.FAILED
            error = ProviderError(ErrorKind.UNKNOWN, "The answer ended unexpectedly.")
        else:
            status = Message.Status.FAILED if error else Message.Status.COMPLETE
        usage = result.usage if result is not None else None
        fields: dict[str, Any] = {
            "content": self.text,
            "status": status,
            "finish_reason": (result.finish_reason if result else "")[:32],
            "error_kind": error.kind.value if error else "",
            "error_message": error.message[:500] if error else "",
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "usage_estimated": usage.estimated if usage else False,
            "finished_at": timezone.now(),
            "updated_at": timezone.now(),
        }
        if result is not None and result.model:
            fields["model"] = result.model[:200]
        updated = Message.objects.filter(pk=message.pk, status=Message.Status.STREAMING).update(
            **fields
        )
        if not updated:
            # Deleted with its conversation, or failed by the sweeper (its verdict stands).
            self.deleted = not Message.objects.filter(pk=message.pk).exists()
            self._record_usage(result)
            return
        self._record_usage(result)
        for name, value in fields.items():
            setattr(message, name, value)
        generation_finished.send(sender=Message, message=message, result=result)

    def _record_usage(self, result: GenerationResult | None) -> None:
        from usage.budgets import settle_reservation
        from usage.models import Reservation
        from usage.services import record_generation

        if result is None:
            # Stopped before the engine's result: bill what we saw, flagged estimated.
            usage = Usage(output_tokens=(len(self.text) + 3) // 4, estimated=True)
            error = ProviderError(ErrorKind.CANCELLED, "Stopped by the user.")
            result = GenerationResult(self.text, self.message.model, usage=usage, error=error)
        try:
            records = record_generation(
                provider=self.message.provider,
                user=self.message.conversation.owner,
                source="chat",
                result=result,
                message=None if self.deleted else self.message,
            )
            reservation_id = self.message.reservation_id  # None: the user has no limit
            if reservation_id is not None:
                for held in Reservation.objects.filter(pk=reservation_id):
                    settle_reservation(reservation=held, records=records)
        except Exception as exc:  # metering must not lose the answer
            kind = type(exc).__name__
            logger.error("Recording usage of message %s failed: %s", self.message.pk, kind)


class _End:
    """The stream's end, or the exception that ended it (re-raised in the worker)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def _read_into(stream: AsyncIterator[Any], items: asyncio.Queue[Any]) -> None:
    try:
        async for item in stream:
            items.put_nowait(item)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        items.put_nowait(_End(exc))
        return
    items.put_nowait(_End())
