"""``POST /v1/embeddings`` in OpenAI's shape, for the fake upstream.

Vectors are deterministic: each is drawn from a hash of the model and the input (text or
token ids), then scaled to length 1 as OpenAI's are, and rounded to float32 so that the
``float`` and ``base64`` answers carry the same numbers. `DEFAULT_DIMENSIONS` keeps
payloads small; ``dimensions`` in the request sets another size. Usage counts a text at
4 characters a token (at least one) and a token array by its length.

The app applies auth and the HTTP fault knobs first, as for chat; here ``ttft`` delays
the answer, ``stall`` holds it until the client leaves (counted as an early close),
``error`` is a 500 and ``drop`` sends half the body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from providers.fake_upstream.knobs import Knobs, split_model
from providers.fake_upstream.wire import OpenAIDialect

EMBEDDINGS_PATH = "/v1/embeddings"
DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 4096  # a fake need not hand out megabytes because a test asked
_OPENAI = OpenAIDialect()

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
Item = str | list[int]


def vector_for(model: str, item: Item, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The fake's vector for one input: what a test expects back."""
    seed = hashlib.sha256(json.dumps([model, item]).encode()).digest()
    rng = random.Random(seed)
    values = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return list(struct.unpack(f"<{dimensions}f", _float32([v / norm for v in values])))


def _float32(values: list[float]) -> bytes:
    # Written with struct, not with the adapters' helpers: the fake checks them.
    return struct.pack(f"<{len(values)}f", *values)


def prompt_tokens(items: list[Item]) -> int:
    return sum(max(1, len(item) // 4) if isinstance(item, str) else len(item) for item in items)


def embeddings_answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for a request body: the vectors, or a 400 as OpenAI words it."""
    items = _items(body.get("input"))
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    encoding = body.get("encoding_format", "float")
    if items is None:
        return 400, _OPENAI.error_body(400, "'input' is invalid.")
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        return 400, _OPENAI.error_body(400, "'dimensions' is invalid.")
    if encoding not in ("float", "base64"):
        return 400, _OPENAI.error_body(400, "'encoding_format' is invalid.")
    model = split_model(str(body.get("model", "")))[0]
    data = []
    for index, item in enumerate(items):
        vector = vector_for(model, item, dimensions)
        sent = base64.b64encode(_float32(vector)).decode() if encoding == "base64" else vector
        data.append({"object": "embedding", "index": index, "embedding": sent})
    tokens = prompt_tokens(items)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return 200, {"object": "list", "data": data, "model": model, "usage": usage}


def _items(value: object) -> list[Item] | None:
    """The inputs, one per vector, or None for a shape OpenAI refuses."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, str) and item for item in value):
        return list(value)
    if all(_is_token_array(item) for item in value):
        return list(value)
    return [value] if _is_token_array(value) else None


def _is_token_array(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


async def respond(
    knobs: Knobs,
    body: dict[str, Any],
    receive: Receive,
    send: Send,
    *,
    on_early_close: Callable[[], None],
) -> None:
    """Answer after the knobs' delay, unless the client leaves first."""
    status, payload = embeddings_answer(body)
    if knobs.fault == "error":
        status, payload = 500, _OPENAI.error_body(500)
    waiting = asyncio.ensure_future(_delay(knobs))
    leaving = asyncio.ensure_future(_wait_for_disconnect(receive))
    done, _ = await asyncio.wait({waiting, leaving}, return_when=asyncio.FIRST_COMPLETED)
    if leaving in done:
        waiting.cancel()
        on_early_close()
        return
    leaving.cancel()
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if knobs.fault == "drop":
        # Half a body, then the connection closes: the client sees an incomplete response.
        half = data[: len(data) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        return
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _delay(knobs: Knobs) -> None:
    await asyncio.sleep(knobs.ttft_ms / 1000)
    if knobs.fault == "stall":
        await asyncio.Event().wait()  # until the client goes away


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
