"""The adapters read server-sent events off the wire themselves (providers/adapters/sse.py).

These tests put a re-cutting layer in front of the fake upstream, over real HTTP: each
streamed write is cut into several reads (inside a data line, between CR and LF, inside
a multibyte character), line ends become CRLF or CR, keepalive comments are added. The
adapters must read the same answer, usage and errors as from the plain fake.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest
import uvicorn

from providers.adapters import get_adapter
from providers.errors import ERROR_WORDS
from providers.fake_upstream import FakeUpstreamApp, Knobs
from providers.models import Provider
from tests.providers.fake_helpers import TEST_KEY, ask, collect, run

pytestmark = pytest.mark.django_db
KINDS = ["openai", "anthropic"]
EXPECTED = "".join(Knobs().text_tokens())
# A word of the default answer, and what the wire says instead: U+2028 and NEL end a
# line for `str.splitlines`, not for SSE; the multibyte characters get cut between reads.
WORD = "flowing"
ODD_WORD = "flo\u2028wi\x85ng \u00e9\u2026"
PAUSE_SECONDS = 0.002  # between the pieces of one write, so that each is a read of its own

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


def cut(body: bytes, at: list[int]) -> list[bytes]:
    edges = [0, *sorted({i for i in at if 0 < i < len(body)}), len(body)]
    return [body[a:b] for a, b in pairwise(edges)]


def split(body: bytes) -> list[bytes]:
    """Inside `data: {`, in the middle of the line, and the blank line on its own."""
    return cut(body, [3, 8, len(body) // 2, len(body) - 1])


def crlf(body: bytes) -> list[bytes]:
    """CRLF line ends, each CR in one read and its LF in the next."""
    body = body.replace(b"\n", b"\r\n")
    return cut(body, [i + 1 for i, byte in enumerate(body) if byte == ord("\r")])


def cr(body: bytes) -> list[bytes]:
    return [body.replace(b"\n", b"\r")]


def keepalive(body: bytes) -> list[bytes]:
    return [b": keepalive\n\n", body, b":\n"]


def unicode(body: bytes) -> list[bytes]:
    body = body.replace(WORD.encode(), ODD_WORD.encode())
    return cut(body, [i + 1 for i, byte in enumerate(body) if byte >= 0x80])


def tail(body: bytes) -> list[bytes]:
    """After `[DONE]`, one more chunk: the SDK never read it, nor must the adapter."""
    extra = b'data: {"choices":[{"index":0,"delta":{"content":" extra"}}]}\n\n'
    return [body, extra] if body.startswith(b"data: [DONE]") else [body]


RESHAPES: dict[str, Callable[[bytes], list[bytes]]] = {
    "split": split,
    "crlf": crlf,
    "cr": cr,
    "keepalive": keepalive,
    "unicode": unicode,
    "tail": tail,
}


class Reshaper:
    """ASGI app: ``/wire/<mode>[+<mode>...]/<rest>`` is the fake upstream's ``/<rest>``,
    its event-stream writes re-cut by each mode in turn (``gzip`` mislabels the body)."""

    def __init__(self, app: FakeUpstreamApp) -> None:
        self.app = app
        self.clients: list[tuple[str, int]] = []  # the connection of each generation call

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/wire/"):
            await self.app(scope, receive, send)
            return
        modes, _, rest = scope["path"][len("/wire/") :].partition("/")
        if rest.endswith(("chat/completions", "messages")):
            self.clients.append(tuple(scope["client"]))
        scope = {**scope, "path": "/" + rest}
        await self.app(scope, receive, self._reshaping(send, modes.split("+")))

    def _reshaping(self, send: Send, modes: list[str]) -> Send:
        streaming = False

        async def reshaped(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                streaming = b"text/event-stream" in dict(message["headers"]).get(
                    b"content-type", b""
                )
                if streaming and "gzip" in modes:
                    headers = [*message["headers"], (b"content-encoding", b"gzip")]
                    message = {**message, "headers": headers}
            if not streaming or message["type"] != "http.response.body":
                await send(message)
                return
            pieces = [message.get("body", b"")]
            for mode in modes:
                if mode in RESHAPES:
                    pieces = [piece for body in pieces for piece in RESHAPES[mode](body)]
            for piece in pieces:
                if piece:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                    await asyncio.sleep(PAUSE_SECONDS)
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        return reshaped


@pytest.fixture(scope="module")
def wire() -> Iterator[tuple[str, Reshaper]]:
    """The re-cutting layer and fake upstream, served by uvicorn on a loopback port."""
    app = Reshaper(FakeUpstreamApp(Knobs(ttft_ms=0, delay_ms=0, tokens=12)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="critical", log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


def provider(wire: tuple[str, Reshaper], kind: str, modes: str) -> Provider:
    root = f"{wire[0]}/wire/{modes}"
    made = Provider(
        name=f"{kind}-{uuid.uuid4().hex[:8]}",
        kind=kind,
        base_url=f"{root}/v1" if kind == "openai" else root,
        default_model="fake-model",
    )
    made.set_api_key(TEST_KEY)
    made.save()
    return made


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("modes", ["split", "crlf", "cr", "keepalive", "unicode", "tail"])
def test_recut_streams_read_the_same(wire, kind, modes):
    adapter = get_adapter(provider(wire, kind, modes))
    deltas, result = run(collect(adapter.stream(ask())))
    expected = EXPECTED.replace(WORD, ODD_WORD) if modes == "unicode" else EXPECTED
    assert result.ok, result.error
    assert "".join(deltas) == result.text == expected
    assert len(deltas) == 12
    assert result.finish_reason == "stop"
    assert result.usage.output_tokens == 12
    assert result.usage.input_tokens > 0
    assert not result.usage.estimated


@pytest.mark.parametrize(("kind", "status_code"), [("openai", None), ("anthropic", 200)])
def test_error_event_mid_stream_keeps_the_partial_text(wire, kind, status_code):
    # As the SDKs raised it: OpenAI's `{"error": ...}` chunk carries no status, Anthropic's
    # `event: error` the stream's 200.
    adapter = get_adapter(provider(wire, kind, "split+crlf"))
    deltas, result = run(collect(adapter.stream(ask(model="fake-model?fault=error&after=3"))))
    error = result.error
    assert (error.kind, error.status_code, error.retry_after) == (
        "provider_error",
        status_code,
        None,
    )
    assert error.message == ERROR_WORDS[error.kind]
    assert result.text == "".join(deltas) == "".join(Knobs().text_tokens(3))
    assert result.finish_reason == ""
    assert result.usage.estimated
    assert result.usage.output_tokens == (len(result.text) + 3) // 4


@pytest.mark.parametrize(
    ("kind", "error_kind"), [("openai", "network"), ("anthropic", "provider_error")]
)
def test_undecodable_body_fails_as_it_did_through_the_sdk_stream(wire, kind, error_kind):
    # The openai SDK's stream wrapped every failed read in APIConnectionError; the
    # anthropic SDK's let the HTTP layer's DecodingError through.
    adapter = get_adapter(provider(wire, kind, "gzip"))
    deltas, result = run(collect(adapter.stream(ask())))
    assert deltas == []
    assert result.error.kind == error_kind


@pytest.mark.parametrize("kind", KINDS)
def test_a_finished_stream_leaves_its_connection_for_the_next(wire, kind):
    adapter = get_adapter(provider(wire, kind, "split"))
    before = len(wire[1].clients)

    async def twice():
        return [await collect(adapter.stream(ask())) for _ in range(2)]

    results = [result for _, result in run(twice())]
    assert all(result.ok for result in results)
    first, second = wire[1].clients[before:]
    assert first == second
