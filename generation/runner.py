"""Generating one assistant message on a huey worker thread.

The worker thread claims the message and does the database work (the setup, a save
of the text so far every SAVE_INTERVAL, the finish) in plain sync code. The upstream
stream runs as a task on the process's stream loop (stream_loop.py: one loop, so one
pooled SDK client per provider, for every answer), which publishes each delta to the
relay as it arrives. The thread waits for that task in short windows (CANCEL_POLL),
so a stop request is noticed promptly even while the upstream is silent, and the task
wakes it as soon as a save is due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from config.db import return_pooled_connection
from generation import stream_loop
from generation.models import Message
from generation.relay import Relay, RelayEvent, get_relay
from generation.routes import alias_route
from providers.adapters.base import (
    GenerationRequest,
    GenerationResult,
    ReasoningDelta,
    StreamItem,
    TextDelta,
)
from providers.engine import StreamTracker, stream_generation
from providers.errors import ErrorKind, ProviderError
from providers.validation import InvalidRequest
from routing.engine import RoutedTracker, stream_routed
from routing.services import AliasUnavailable
from usage.pricing import normalized

if TYPE_CHECKING:
    from huey.consumer import Consumer

    from usage.models import UsageRecord

logger = logging.getLogger(__name__)

SAVE_INTERVAL = 0.25  # seconds between saves of the accumulated text (and reasoning)
HEARTBEAT_INTERVAL = 5.0  # a save even without new text, so the sweeper sees us alive
CANCEL_POLL = 0.1  # relay flag check (cheap)
DB_CANCEL_POLL = 1.0  # database check: a deleted row, or a flag the relay missed

# Set when the process is shutting down: generations still running at the deadline
# stop, keep their text and end as failed-retryable, instead of being cut off silently.
_shutdown_deadline: float | None = None
INTERRUPTED = "The answer was interrupted by a server restart."


def begin_shutdown(*, grace: float) -> None:
    """Give running generations `grace` seconds to finish, then stop them cleanly.

    Call before stopping the huey consumer (its graceful stop waits for tasks).
    """
    global _shutdown_deadline
    _shutdown_deadline = time.monotonic() + max(grace, 0.0)


def begin_shutdown_of(consumer: Consumer) -> None:
    """`begin_shutdown` with the grace `consumer` allows: until a second before its
    shutdown timeout, so its graceful stop still sees each answer end cleanly."""
    begin_shutdown(grace=max((consumer.shutdown_timeout or 0) - 1, 0))


def cancel_shutdown() -> None:
    global _shutdown_deadline
    _shutdown_deadline = None


def shutting_down() -> bool:
    return _shutdown_deadline is not None


def interrupt_answers_on_stop(consumer: Consumer) -> None:
    """When `consumer` begins to stop (its stop flag, set by a graceful signal), give its
    answers until a second before its shutdown timeout, then end them as interrupted."""

    def watch() -> None:
        consumer.stop_flag.wait()
        begin_shutdown_of(consumer)

    threading.Thread(target=watch, name="shutdown-watch", daemon=True).start()


def run_generation(*, message_id: int) -> bool:
    """Generate the answer; False when it was left pending because this process is
    stopping (the caller queues it again, for a process that stays)."""
    if shutting_down():
        return False
    now = timezone.now()
    # The idempotent claim: of two runs of this task, only one moves pending→streaming.
    claimed = Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(
        status=Message.Status.STREAMING, started_at=now, updated_at=now
    )
    if not claimed:
        logger.info("Message %s was already claimed or stopped; nothing to do.", message_id)
        return True
    # get(), not first(): first() orders the query, and compiling that ordering was
    # the costliest step of this task's setup (py-spy, chat_ttft).
    try:
        message = Message.objects.select_related("provider", "alias", "conversation__owner").get(
            pk=message_id
        )
    except Message.DoesNotExist:
        return True  # deleted with its conversation while we started
    relay = get_relay()
    try:
        _Generation(message, relay).run()
    finally:
        relay.complete(message.relay_key)
    return True


def _storable(text: str) -> str:
    # PostgreSQL refuses NUL in text: one from a model would fail every save of the answer.
    return text.replace("\x00", "\ufffd")


class _Generation:
    def __init__(self, message: Message, relay: Relay) -> None:
        self.message = message
        self.relay = relay
        # The answer and the reasoning before it, as relayed: each a str replaced whole
        # by the stream loop's thread and read by the worker thread's saves (see _texts).
        self.text = ""
        self.reasoning = ""
        self.reasoning_started: datetime | None = None
        self.reasoning_ended: datetime | None = None  # at the answer's first text
        self.saved_offset = 0
        # How far into reasoning-then-answer the relay has carried: a stop can cancel a
        # publish after its text was kept, and the rest is relayed before the end.
        self.relayed_offset = 0
        self.last_save = self.last_flag_check = self.last_db_check = time.monotonic()
        self.cancelled = False
        self.interrupted = False
        self.gone = False  # the row was deleted or taken over by the sweeper
        self.deleted = False
        # Set by the stream task when a save is due or it has ended.
        self.wake = threading.Event()
        # What the stream has done (attempts, text): metered when it is stopped before
        # its own result, since the provider bills the prompt all the same. For an alias,
        # every target's attempts, each naming its target.
        self.tracker = RoutedTracker() if message.alias_id is not None else StreamTracker()

    def run(self) -> None:
        try:
            stream = self._stream()
        except ProviderError as refused:  # before any call: nothing to meter
            self._finish(GenerationResult(text="", model=self.message.model, error=refused))
            return
        result: GenerationResult | None = None
        try:
            result = self._drive(stream)
        except InvalidRequest as refused:
            # Every target of an alias refused the request before any call (e.g. a
            # target's model renamed since the send): nothing to meter, a reason in words.
            error = ProviderError(ErrorKind.BAD_REQUEST, refused.message)
            self._finish(GenerationResult(text="", model=self.message.model, error=error))
            return
        except Exception as exc:
            # The type only: exception text could quote the request.
            kind = type(exc).__name__
            logger.error("Generation of message %s crashed: %s", self.message.pk, kind)
            error = ProviderError(ErrorKind.UNKNOWN, "Unexpected error.")
            result = self.tracker.interrupted_result() or GenerationResult(
                text=self.text, model=self.message.model
            )
            result.error = error  # the attempts made so far are still metered
        if not self.gone:
            self._finish(result)
            return
        self._note_answerer()
        # Deleted (its conversation) or failed by the sweeper meanwhile: the upstream
        # call still happened and is metered.
        self.deleted = not Message.objects.filter(pk=self.message.pk).exists()
        self._record_usage(result)

    def _stream(self) -> AsyncIterator[StreamItem]:
        """The upstream stream of the request the send built and validated, made as it
        was stored: to the message's provider, or to its alias's targets in turn (planned
        now; the routed tracker names the one answering). Or a ProviderError saying why
        it cannot be made."""
        message = self.message
        if message.request is None:  # queued before requests were stored: retry it
            raise ProviderError(
                ErrorKind.BAD_REQUEST, "This answer was queued by an older version."
            )
        request = GenerationRequest.from_json(message.request)
        if message.alias is not None and isinstance(self.tracker, RoutedTracker):
            try:
                targets = alias_route(alias=message.alias).targets
            except AliasUnavailable as exc:
                raise ProviderError(ErrorKind.BAD_REQUEST, exc.message) from None
            return stream_routed(list(targets), request, tracker=self.tracker)
        provider = message.provider
        if provider is None or not provider.is_active:
            raise ProviderError(ErrorKind.BAD_REQUEST, "That provider is no longer available.")
        return stream_generation(provider, request, tracker=self.tracker)

    def _note_answerer(self) -> None:
        """For an alias: the message's provider and model become the target that answered
        (or was tried last), as the thread labels it and its usage is normalised; no
        provider when none was tried (the alias was refused before any call)."""
        tracker = self.tracker
        if not isinstance(tracker, RoutedTracker):
            return
        target = tracker.target
        self.message.provider = target.provider if target is not None else None
        if target is not None:
            self.message.model = target.model

    def _drive(self, stream: AsyncIterator[Any]) -> GenerationResult | None:
        # The setup's queries are done: a pooled connection goes back while we wait on
        # upstream (64 answers at once need not hold 64 connections), and after each
        # save or check below. The next query takes one again.
        return_pooled_connection()
        read_ended = threading.Event()
        task = stream_loop.submit(self._read(stream, read_ended))
        try:
            while True:
                self.wake.wait(CANCEL_POLL)
                self.wake.clear()
                if task.done():
                    return task.result()  # the stream's exception, if any, is raised here
                if self._should_stop():
                    break
                self._maybe_save()
        finally:
            if not task.done():
                # Cancelling the read stops the upstream request at once; its cleanup
                # (closing the response) runs on the loop: wait for it.
                task.cancel()
                read_ended.wait(5)
        # Stopped. A stream that ended meanwhile still has its own result, usage and all.
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return None

    async def _read(
        self, stream: AsyncIterator[Any], ended: threading.Event
    ) -> GenerationResult | None:
        """On the stream loop: relay each delta as it arrives; the result at the end."""
        try:
            async for item in stream:
                if isinstance(item, GenerationResult):
                    return item
                await self._apublish(item)
            return None
        finally:
            try:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                ended.set()
                self.wake.set()

    def _append(self, item: TextDelta | ReasoningDelta) -> RelayEvent | None:
        """Add a delta to the texts; the relay event for it, at its offset in the one
        space of reasoning then answer, or None when it is not relayed."""
        text = _storable(item.text)
        if isinstance(item, ReasoningDelta):
            if self.text:
                # Thinking after the answer began (between tool calls, not in a chat):
                # offsets put all the reasoning first, so it is not streamed; the
                # result's parts keep it to send back.
                return None
            if self.reasoning_started is None:
                self.reasoning_started = timezone.now()
            self.reasoning += text
            return RelayEvent(len(self.reasoning), text, reasoning=True)
        if self.reasoning_started is not None and self.reasoning_ended is None:
            self.reasoning_ended = timezone.now()  # set before the text: see _texts
        self.text += text
        return RelayEvent(len(self.reasoning) + len(self.text), text)

    def _texts(self) -> tuple[str, str]:
        """(reasoning, answer) as one consistent reading from another thread. The answer
        first: once it has begun, the reasoning no longer grows, so a saved answer is
        never saved with part of the reasoning missing."""
        text = self.text
        return self.reasoning, text

    async def _apublish(self, item: TextDelta | ReasoningDelta) -> None:
        if not item.text:
            return
        event = self._append(item)
        if event is None:
            return
        try:
            await self.relay.apublish(self.message.relay_key, event)
            self.relayed_offset = event.id
        except Exception as exc:
            # The relay only carries the text to open streams: the row keeps it (saves,
            # the finish), and a reader that misses an event fills the gap from it. So
            # the answer, and its metering, go on.
            kind = type(exc).__name__
            logger.warning("Relaying message %s failed: %s", self.message.pk, kind)
        if time.monotonic() - self.last_save >= SAVE_INTERVAL:
            self.wake.set()  # a save is due: a reload shows text at most this old

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
            return_pooled_connection()
        return self.cancelled or self.gone

    def _maybe_save(self) -> None:
        # One reading of the texts: the stream loop's thread keeps appending to them.
        reasoning, text = self._texts()
        offset = len(reasoning) + len(text)
        elapsed = time.monotonic() - self.last_save
        changed = offset != self.saved_offset
        if (changed and elapsed >= SAVE_INTERVAL) or elapsed >= HEARTBEAT_INTERVAL:
            fields: dict[str, Any] = {"content": text, "updated_at": timezone.now()}
            if reasoning:
                fields.update(
                    reasoning=reasoning,
                    reasoning_started_at=self.reasoning_started,
                    reasoning_ended_at=self.reasoning_ended if text else None,
                )
            updated = Message.objects.filter(
                pk=self.message.pk, status=Message.Status.STREAMING
            ).update(**fields)
            return_pooled_connection()
            self.gone = self.gone or not updated
            self.saved_offset = offset
            self.last_save = time.monotonic()

    def _finish(self, result: GenerationResult | None) -> None:
        self._note_answerer()
        message = self.message
        if result is not None:
            self._catch_up(result)
        self._relay_rest()
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
        if usage is not None and message.provider is not None:
            # The whole prompt, as the thread shows it: Anthropic counts what it read from
            # (or wrote to) its prompt cache apart from its input tokens.
            usage = normalized(message.provider.kind, usage)
        now = timezone.now()
        fields: dict[str, Any] = {
            "content": self.text,
            "reasoning": self.reasoning,
            "reasoning_started_at": self.reasoning_started,
            # Thinking that never reached an answer ended with the answer.
            "reasoning_ended_at": self.reasoning_ended or (now if self.reasoning_started else None),
            "reasoning_parts": _returnable(result),
            "status": status,
            "finish_reason": (result.finish_reason if result else "")[:32],
            "error_kind": error.kind.value if error else "",
            "error_message": error.message[:500] if error else "",
            "input_tokens": usage.input_tokens if usage else None,
            "output_tokens": usage.output_tokens if usage else None,
            "usage_estimated": usage.estimated if usage else False,
            "finished_at": now,
            "updated_at": now,
            "request": None,  # made: the thread keeps the conversation itself
        }
        if message.alias_id is not None:  # the target that answered (_note_answerer)
            fields.update(provider=message.provider, model=message.model[:200])
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

    def _catch_up(self, result: GenerationResult) -> None:
        """Relay what the result holds beyond the deltas seen (e.g. an answer delivered
        whole), from this thread: the stream task has ended."""
        result.text = _storable(result.text)
        thought = _storable(result.reasoning_text)
        if not self.text and thought.startswith(self.reasoning) and thought != self.reasoning:
            self._publish(ReasoningDelta(thought[len(self.reasoning) :]))
        if result.text.startswith(self.text) and result.text != self.text:
            self._publish(TextDelta(result.text[len(self.text) :]))

    def _publish(self, item: TextDelta | ReasoningDelta) -> None:
        event = self._append(item)
        if event is not None:
            self._send(event)

    def _relay_rest(self) -> None:
        """Relay what the texts hold beyond what reached the relay (a publish cut short
        by a stop, or refused by the relay), so a reader's deltas add up to the answer
        that is saved. From this thread: the stream task has ended."""
        thought = len(self.reasoning)
        if self.relayed_offset < thought:
            rest = self.reasoning[self.relayed_offset :]
            self._send(RelayEvent(thought, rest, reasoning=True))
        total = thought + len(self.text)
        if thought <= self.relayed_offset < total:
            rest = self.text[self.relayed_offset - thought :]
            self._send(RelayEvent(total, rest))

    def _send(self, event: RelayEvent) -> None:
        try:
            self.relay.publish(self.message.relay_key, event)
            self.relayed_offset = event.id
        except Exception as exc:  # the row keeps the text: readers fill the gap from it
            logger.warning("Relaying message %s failed: %s", self.message.pk, type(exc).__name__)

    def _record_usage(self, result: GenerationResult | None) -> None:
        from usage.budgets import settle_reservation
        from usage.models import Reservation
        from usage.services import record_generation

        if result is None:
            # Stopped before the engine's result: every attempt made, the one cut short
            # included (its prompt and the text so far, estimated). None: stopped before
            # any request went out, so nothing was consumed.
            result = self.tracker.interrupted_result()
        try:
            records: list[UsageRecord] = []
            provider = self.message.provider  # None: refused before any call (see run)
            if result is not None and provider is not None:
                records = record_generation(
                    provider=provider,
                    user=self.message.conversation.owner,
                    source="chat",
                    result=result,
                    message=None if self.deleted else self.message,
                    alias=self.message.alias.name if self.message.alias is not None else "",
                )
            reservation_id = self.message.reservation_id  # None: the user has no limit
            if reservation_id is not None:
                for held in Reservation.objects.filter(pk=reservation_id):
                    settle_reservation(reservation=held, records=records)
        except Exception as exc:  # metering must not lose the answer
            kind = type(exc).__name__
            logger.error("Recording usage of message %s failed: %s", self.message.pk, kind)


def _returnable(result: GenerationResult | None) -> list[dict[str, str]] | None:
    """The reasoning parts to keep for the next turn: only when one of them can go back
    (a signature, redacted data); DeepSeek's text alone is in `reasoning` already."""
    parts = result.reasoning if result is not None else ()
    if not any(part.returnable for part in parts):
        return None
    return [part.to_json() for part in parts]
