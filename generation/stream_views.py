"""The SSE stream of one assistant message: an async view.

The stream never starts or restarts generation: it only reads the database row and
follows the relay. Event ids are offsets into the message's reasoning followed by its
answer (see relay_base.py), so a resume from `Last-Event-ID` N replays
`(reasoning + content)[N:]` from the database, as `reasoning` then `delta` events, and
then tails the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import aget_object_or_404
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from config.db import arelease_connection
from generation.forms import plain_int
from generation.models import Message
from generation.relay import get_relay
from generation.rendering import (
    HEARTBEAT,
    delta_frame,
    frames_after,
    render_message,
    sse_frame,
)
from metrics.instruments import counted_stream


def _heartbeat_seconds() -> float:
    return float(settings.SWITCHBOARD.get("SSE_HEARTBEAT_SECONDS", 10))


def _resume_offset(request: HttpRequest) -> int:
    # The browser sends Last-Event-ID on its own reconnects; a page (re)load passes
    # the length of the texts it already shows (reasoning and answer) as ?after=.
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    return plain_int(raw) or 0


async def _status(message_id: int) -> str | None:
    try:
        return await Message.objects.values_list("status", flat=True).aget(pk=message_id)
    except Message.DoesNotExist:
        return None
    finally:
        await arelease_connection()


async def _saved_texts(message_id: int) -> tuple[str, str]:
    """The persisted reasoning and answer."""
    try:
        return await Message.objects.values_list("reasoning", "content").aget(pk=message_id)
    except Message.DoesNotExist:
        return "", ""
    finally:
        await arelease_connection()


def _final_html(message_id: int) -> tuple[Message, str] | None:
    # Not with_cost(): its grouped join over every column was the costliest query of a
    # chat answer (py-spy, chat_ttft); the bubble reads its few usage rows instead.
    try:
        message = Message.objects.select_related("provider", "alias").get(pk=message_id)
    except Message.DoesNotExist:
        return None
    return message, render_message(message)


async def _events(message: Message, after: int) -> AsyncIterator[bytes]:
    # The view's reads (session, user, message) are done, and so is the middleware:
    # from here on the stream holds no database connection while it waits.
    await arelease_connection()
    # The client may be ahead of the database (saves lag the relay): trust its offset.
    # First: persisted text the client has not seen. The offsets make it exact.
    frames, cursor = frames_after(reasoning=message.reasoning, content=message.content, after=after)
    for frame in frames:
        yield frame
    if not frames:
        # Bytes at once, so the browser (and any proxy) sees the stream open now rather
        # than at the first token or heartbeat, which may be seconds away.
        yield HEARTBEAT
    if message.is_active:
        events = get_relay().follow(message.relay_key, after=cursor, idle=_heartbeat_seconds())
        async for event in events:
            if event is None:
                yield HEARTBEAT
                # The relay may have lost this stream (a restart); the row knows.
                status = await _status(message.pk)
                if status not in Message.ACTIVE:
                    break
                continue
            if event.id <= cursor:
                continue
            if event.start > cursor:
                # The relay dropped events we need (trimmed): fill from the database.
                reasoning, content = await _saved_texts(message.pk)
                frames, cursor = frames_after(reasoning=reasoning, content=content, after=cursor)
                for frame in frames:
                    yield frame
                if event.id <= cursor or event.start > cursor:
                    continue  # still a hole: the final event carries the whole text
            text = event.text[cursor - event.start :]
            yield delta_frame(text=text, id=event.id, reasoning=event.reasoning)
            cursor = event.id
    try:
        final = await sync_to_async(_final_html)(message.pk)
    finally:
        await arelease_connection()
    if final is None:
        # Deleted (with its conversation) while we streamed: say so and end, or the
        # browser would reconnect, again and again, to a stream that is now a 404.
        gone = render_to_string("generation/_message_deleted.html", {"message_id": message.pk})
        yield sse_frame(event="done", data=gone)
        return
    saved, html = final
    frames, cursor = frames_after(reasoning=saved.reasoning, content=saved.content, after=cursor)
    for frame in frames:
        yield frame
    # No id on the final event: a reconnect after it resumes from the last delta.
    yield sse_frame(event="done", data=html)


@login_required
@require_GET
async def stream(request: HttpRequest, message_id: int) -> HttpResponseBase:
    # Async throughout: an open stream waits on the event loop, holding no thread.
    user = await request.auser()
    message = await aget_object_or_404(
        Message, pk=message_id, role=Message.Role.ASSISTANT, conversation__owner=user
    )
    response = StreamingHttpResponse(
        counted_stream(_events(message, _resume_offset(request))),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    # nginx and similar proxies must pass each event through at once.
    response["X-Accel-Buffering"] = "no"
    return response
