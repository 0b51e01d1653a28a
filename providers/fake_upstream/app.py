"""The fake upstream as a raw ASGI app: routing, auth, knobs, timing, faults and records.

Routes (after an optional ``/knobs/<knob string>`` prefix, see `knobs.py`):

- ``POST /v1/chat/completions``: OpenAI chat completions, streamed or not; auth by
  ``Authorization: Bearer``.
- ``POST /v1/messages``: Anthropic messages, streamed or not; auth by ``x-api-key`` or
  ``Authorization: Bearer`` (what the current SDK sends).
- ``POST /v1/embeddings``: OpenAI embeddings (see `embeddings.py`).
- ``GET /v1/models``: the Anthropic shape when the request carries ``anthropic-version``
  or ``x-api-key``, the OpenAI shape otherwise.

A missing key, or one containing ``invalid``, gets a 401 in the provider's shape (unless
the ``keyless`` knob is set, as for a local server).
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from providers.fake_upstream import embeddings
from providers.fake_upstream.knobs import (
    HTML_FAULT,
    HTTP_FAULTS,
    REDIRECT_FAULT,
    Knobs,
    apply_knob_string,
    split_model,
)
from providers.fake_upstream.prompt_cache import PromptCache
from providers.fake_upstream.structured import json_tokens, requested_schema
from providers.fake_upstream.tools import planned_calls, results_answer
from providers.fake_upstream.wire import (
    REDACTED_DATA,
    Answer,
    AnthropicDialect,
    Dialect,
    OpenAIDialect,
    blocks,
)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_AUTH_HEADERS = frozenset({"authorization", "x-api-key"})
_OPENAI = OpenAIDialect()
_ANTHROPIC = AnthropicDialect()
_GENERATION_ROUTES: dict[str, Dialect] = {
    _OPENAI.generation_path: _OPENAI,
    _ANTHROPIC.generation_path: _ANTHROPIC,
}


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the knobs prefix
    headers: dict[str, str]  # lower-cased names; the key headers are left out
    auth_scheme: str  # "bearer", "x-api-key" or ""
    body: Any  # the parsed JSON body, or None
    connection: str = ""  # the client's address and port: one per TCP connection


@dataclass
class Records:
    """What the fake saw; shared between the server thread and the test thread."""

    requests: list[RecordedRequest] = field(default_factory=list)
    prompt_cache: PromptCache = field(default_factory=PromptCache)
    calls: int = 0
    early_closes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)
            self.calls += 1

    def early_close(self) -> None:
        with self.lock:
            self.early_closes += 1

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.calls = 0
            self.early_closes = 0
        self.prompt_cache.clear()


class FakeUpstreamApp:
    def __init__(self, defaults: Knobs | None = None, records: Records | None = None) -> None:
        self.defaults = defaults or Knobs()
        self.records = records or Records()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path, knob_string = _split_knobs(scope["path"])
        raw_body = await _read_body(receive)
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        self.records.add(
            RecordedRequest(
                method=scope["method"],
                path=path,
                headers={k: v for k, v in headers.items() if k not in _AUTH_HEADERS},
                auth_scheme=_auth_scheme(headers),
                body=body,
                connection=":".join(map(str, scope.get("client") or ())),
            )
        )
        dialect = _dialect_for(path, headers)
        try:
            knobs = apply_knob_string(self.defaults, knob_string)
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                knobs = apply_knob_string(knobs, split_model(body["model"])[1])
        except ValueError as exc:
            await _json(
                send, 400, {"error": {"message": str(exc), "type": "invalid_request_error"}}
            )
            return
        key = dialect.api_key(headers)
        refused = not knobs.keyless and (key is None or "invalid" in key.lower())
        if refused or knobs.fault == "401":
            await _json(send, 401, dialect.error_body(401))
            return
        if knobs.fault == REDIRECT_FAULT:
            location = [(b"location", b"/redirected"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 307, "headers": location})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if knobs.fault == HTML_FAULT:
            page = b"<!doctype html><html><body><h1>Welcome</h1></body></html>"
            page_headers = [
                (b"content-type", b"text/html"),
                (b"content-length", b"%d" % len(page)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": page_headers})
            await send({"type": "http.response.body", "body": page, "more_body": False})
            return
        if knobs.text_only and isinstance(body, dict) and count_images(body):
            await _json(send, 400, dialect.error_body(400, IMAGES_REFUSED))
            return
        if isinstance(body, dict) and (reason := dialect.refusal(body)):
            await _json(send, 400, dialect.error_body(400, reason))
            return
        if knobs.fault in HTTP_FAULTS:
            await _json(
                send, int(knobs.fault), dialect.error_body(int(knobs.fault)), _retry_headers(knobs)
            )
            return
        if scope["method"] == "GET" and path == "/v1/models":
            await _json(send, 200, dialect.models_body())
        elif (
            scope["method"] == "POST" and path == dialect.generation_path and isinstance(body, dict)
        ):
            await self._generate(dialect, knobs, body, receive, send)
        elif (
            scope["method"] == "POST"
            and path == embeddings.EMBEDDINGS_PATH
            and isinstance(body, dict)
        ):
            await embeddings.respond(
                knobs, body, receive, send, on_early_close=self.records.early_close
            )
        else:
            await _json(send, 404, dialect.error_body(404))

    async def _generate(
        self, dialect: Dialect, knobs: Knobs, body: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        read, written = self.records.prompt_cache.use(body)
        answer = _answer(dialect, knobs, body)
        answer = replace(
            answer, cached_tokens=answer.cached_tokens + read, cache_write_tokens=written
        )
        if body.get("stream"):
            producer = _stream(dialect, knobs, answer, body, send)
        else:
            producer = _complete(dialect, knobs, answer, send)
        # Race the answer against the client going away, so an early close is seen and counted.
        produce = asyncio.ensure_future(producer)
        disconnect = asyncio.ensure_future(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait({produce, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if produce in done:
            disconnect.cancel()
            produce.result()
        else:
            produce.cancel()
            self.records.early_close()


def _answer(dialect: Dialect, knobs: Knobs, body: dict[str, Any]) -> Answer:
    limit = dialect.max_tokens(body)
    thinks = dialect.thinks(body)
    think = knobs.think if thinks else 0
    # Reasoning counts against max_tokens, as on both real APIs; the answer gets the rest.
    think = think if limit is None else min(think, max(limit, 0))
    room = None if limit is None else max(limit - think, 0)
    schema = requested_schema(body)
    calls = planned_calls(dialect.name, body, knobs.parallel)
    read = results_answer(dialect.name, body)
    # A structured answer is as long as its JSON; free text as long as the knobs say; a
    # turn of tool calls has none, and the answer to tool results says what it read.
    if calls:
        tokens = knobs.text_tokens(knobs.preamble) if knobs.preamble else []
    elif schema is None and read is not None:
        tokens = [("" if i == 0 else " ") + word for i, word in enumerate(read.split(" "))]
    else:
        tokens = knobs.text_tokens() if schema is None else json_tokens(schema)
    full = len(tokens)
    count = full if room is None else min(full, room)
    choices = body.get("n")
    return Answer(
        model=split_model(str(body.get("model", "")))[0],
        tokens=tokens[:count],
        finished_by_length=count < full,
        choices=choices if isinstance(choices, int) and choices > 1 else 1,
        prompt_tokens=_estimate_prompt_tokens(body),
        cached_tokens=knobs.cached,
        reasoning_tokens=knobs.reasoning or think,
        reasoning=tuple(knobs.thought_tokens(think)),
        redacted=REDACTED_DATA if knobs.redacted and thinks and dialect.name == "anthropic" else "",
        tool_calls=calls,
    )


async def _stream(
    dialect: Dialect, knobs: Knobs, answer: Answer, body: dict[str, Any], send: Send
) -> None:
    writer = dialect.stream_start(answer, body)
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await _send_chunks(send, writer.head())
    await asyncio.sleep(knobs.ttft_ms / 1000)
    # Reasoning first, then the answer: one sequence for the timing and fault knobs.
    pieces: list[tuple[Callable[[str], list[bytes]], str]]
    pieces = [(writer.thought, text) for text in answer.reasoning]
    pieces += [(writer.token, text) for text in answer.tokens]
    if answer.choices > 1:  # n: only asked of the OpenAI format (Anthropic has no n)
        other = writer.other_choices()
        pieces += [(functools.partial(writer.choice_token, index), word) for index, word in other]
    for index, call in enumerate(answer.tool_calls):
        for number, fragment in enumerate(call.fragments() or [""]):
            opens = functools.partial(writer.call_fragment, index, first=number == 0)
            pieces.append((opens, fragment))
    for index, (write, piece) in enumerate(pieces):
        if index == knobs.after and await _stream_fault(knobs, writer, send):
            return
        if index > 0:
            await asyncio.sleep(knobs.delay_ms / 1000)
        await _send_chunks(send, write(piece))
    if knobs.after >= len(pieces) and await _stream_fault(knobs, writer, send):
        return
    await _send_chunks(send, writer.tail())
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _stream_fault(knobs: Knobs, writer: Any, send: Send) -> bool:
    """Act out a mid-stream fault; True when the stream is over."""
    if knobs.fault == "drop":
        # Returning with the response incomplete makes the server close the connection.
        return True
    if knobs.fault == "stall":
        await asyncio.Event().wait()  # until the client goes away
    if knobs.fault == "error":
        await _send_chunks(send, writer.error())
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    if knobs.fault == "garbage":
        # Named, so that a client of either dialect reads it as a chunk.
        await _send_chunks(send, [b"event: content_block_delta\ndata: {not json\n\n"])
    if knobs.fault in {"end", "garbage"}:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    return False


async def _complete(dialect: Dialect, knobs: Knobs, answer: Answer, send: Send) -> None:
    pieces = len(answer.reasoning) + len(answer.tokens) + len(answer.tool_calls)
    await asyncio.sleep((knobs.ttft_ms + knobs.delay_ms * max(pieces - 1, 0)) / 1000)
    if knobs.fault == "stall":
        await asyncio.Event().wait()
    if knobs.fault == "error":
        await _json(send, 500, dialect.error_body(500))
        return
    payload = json.dumps(dialect.completion_body(answer)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if knobs.fault == "drop":
        # Half a body, then the connection closes: the client sees an incomplete response.
        await send(
            {"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True}
        )
        return
    await send({"type": "http.response.body", "body": payload, "more_body": False})


# What the fake bills an image as input: a fixed count, so a test can see images counted.
IMAGE_TOKENS = 765
IMAGES_REFUSED = "This model does not support image input."


def _is_image(block: dict[str, Any]) -> bool:
    return block.get("type") in {"image_url", "image"}  # OpenAI's part, Anthropic's block


def count_images(body: dict[str, Any]) -> int:
    return sum(1 for block in blocks(body) if _is_image(block))


def _estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """The text at 4 characters a token, each image at IMAGE_TOKENS (not its base64)."""
    images = count_images(body)
    without_images = {
        "messages": [
            {**m, "content": [b for b in m["content"] if not _is_image(b)]}
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            else m
            for m in body.get("messages", []) or []
        ]
    }
    text = json.dumps(without_images["messages"]) + json.dumps(body.get("system", ""))
    return max(1, len(text) // 4) + images * IMAGE_TOKENS


def _retry_headers(knobs: Knobs) -> list[tuple[bytes, bytes]]:
    headers = []
    if knobs.retry_after is not None:
        headers.append((b"retry-after", f"{knobs.retry_after:g}".encode()))
    if knobs.retry_after_ms is not None:
        headers.append((b"retry-after-ms", str(knobs.retry_after_ms).encode()))
    return headers


def _split_knobs(path: str) -> tuple[str, str]:
    """``/knobs/tokens=3/v1/models`` -> ``("/v1/models", "tokens=3")``."""
    if path.startswith("/knobs/"):
        spec, _, rest = path[len("/knobs/") :].partition("/")
        return "/" + rest, spec
    return path, ""


def _dialect_for(path: str, headers: dict[str, str]) -> Dialect:
    if path in _GENERATION_ROUTES:
        return _GENERATION_ROUTES[path]
    anthropic_shaped = "x-api-key" in headers or "anthropic-version" in headers
    return _ANTHROPIC if anthropic_shaped else _OPENAI


def _auth_scheme(headers: dict[str, str]) -> str:
    if headers.get("authorization", "").lower().startswith("bearer "):
        return "bearer"
    return "x-api-key" if "x-api-key" in headers else ""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_chunks(send: Send, chunks: list[bytes]) -> None:
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _json(
    send: Send, status: int, payload: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
