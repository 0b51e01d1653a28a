"""Server-sent events read straight off a streamed response body, shared by both adapters.

Why the adapters do not iterate the SDKs' own streams: for every chunk those decode the
event and then build pydantic model objects (`construct_type` / `BaseModel.construct`),
which a py-spy profile of the chat benchmark measured at 0.5-1 ms of CPU per chunk, about
13% of a chat worker's CPU. The request still goes through the SDK
(`with_streaming_response`, so a refused request raises the SDK's `APIStatusError` exactly
as before); only the body of an accepted one is read here, and each adapter `json.loads`
an event's data and picks out the few fields it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import httpx2

# (event name, data): the name is "" when the event has none; `data:` lines joined by LF.
Event = tuple[str, bytes]

# How long to read on after the last event, so that an HTTP/1.1 connection goes back to
# the pool instead of being closed mid-body (the openai SDK does the same after `[DONE]`).
DRAIN_SECONDS = 0.1

_CR, _LF = 13, 10


class EventParser:
    """Turns the body, fed in reads of any size, into events as the SSE spec dispatches them.

    Lines end at CR, LF or CRLF and nowhere else, so the split is done on bytes:
    `str.splitlines` (and so httpx's `aiter_lines`) would also split at U+2028, NEL and
    the like, which can sit unescaped inside a JSON string. Comments (`:` keepalives),
    `id` and `retry` are skipped: nothing here uses them. An event the body ends in the
    middle of is dropped, as the spec says.
    """

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # the start of a line a read cut off
        self._after_cr = False  # the last read ended in CR: a leading LF completes a CRLF
        self._name = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Event]:
        """The events that `chunk` completes (usually one: a provider sends one per write)."""
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk[-1:] == b"\r"
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:
                self._partial.append(chunk)
            return []
        if self._partial:
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            self._partial = []
        lines = chunk.splitlines()  # on bytes: CR, LF and CRLF only
        if chunk[-1] not in (_CR, _LF):
            self._partial.append(lines.pop())
        events: list[Event] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: bytes) -> Event | None:
        if not line:
            return self._dispatch()
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._name = value.decode()
        return None

    def _dispatch(self) -> Event | None:
        if not self._data and not self._name:
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = (self._name, data)
        self._name, self._data = "", []
        return event


async def events(response: httpx2.Response) -> AsyncGenerator[Event, None]:
    """Each event of `response`'s body as it arrives. Close it with `contextlib.aclosing`."""
    parser = EventParser()
    async for chunk in response.aiter_bytes():
        for event in parser.feed(chunk):
            yield event


async def drain(response: httpx2.Response, rest: AsyncIterator[Event]) -> None:
    """Read out what follows the last event, briefly, so HTTP/1.1 can reuse the connection.

    `rest` is the `events()` iterator the caller stopped reading. HTTP/2 closes just the
    stream, so there is nothing to wait for.
    """
    if response.http_version != "HTTP/1.1":
        return
    # The answer is complete: nothing read after it may turn it into a failure.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in rest:
                pass
