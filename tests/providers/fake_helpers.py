"""Helpers shared by the provider engine tests: fake-backed providers and stream collection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    ReasoningDelta,
    TextDelta,
)
from providers.adapters.clients import aclose_clients
from providers.fake_upstream import FakeUpstream
from providers.models import Provider

TEST_KEY = "sk-test-0123456789abcdef"
T = TypeVar("T")

# How each provider kind reaches the fake: OpenAI-style base URLs end in /v1.
BASE_URLS: dict[str, Callable[[FakeUpstream, str], str]] = {
    "openai": FakeUpstream.openai_base_url,
    "deepseek": FakeUpstream.openai_base_url,
    "openai_compatible": FakeUpstream.openai_base_url,
    "anthropic": FakeUpstream.anthropic_base_url,
}


def fake_provider(
    fake: FakeUpstream,
    kind: str = "openai",
    knobs: str = "",
    key: str | None = TEST_KEY,
    **fields: object,
) -> Provider:
    """A saved Provider whose base URL points at the fake (with `knobs` in its path);
    ``key=None`` stores none."""
    provider = Provider(
        name=f"{kind}-{uuid.uuid4().hex[:8]}",
        kind=kind,
        base_url=BASE_URLS[kind](fake, knobs),
        default_model="fake-model",
        **fields,
    )
    if key is not None:
        provider.set_api_key(key)
    provider.save()
    return provider


def ask(prompt: str = "Hello there", **params: object) -> GenerationRequest:
    return GenerationRequest(
        model=str(params.pop("model", "fake-model")),
        messages=(ChatMessage.of_text("user", prompt),),
        **params,  # type: ignore[arg-type]
    )


async def collect(items: AsyncIterator[object]) -> tuple[list[str], GenerationResult]:
    """The text deltas' texts and the final result of a stream (which must end with one)."""
    _, deltas, result = await collect_with_reasoning(items)
    return deltas, result


async def collect_with_reasoning(
    items: AsyncIterator[object],
) -> tuple[list[str], list[str], GenerationResult]:
    """The reasoning deltas' texts, the text deltas' texts and the final result; no
    reasoning may come after the answer's text has begun."""
    thoughts: list[str] = []
    deltas: list[str] = []
    result = None
    async for item in items:
        assert result is None, "nothing may follow the result"
        if isinstance(item, ReasoningDelta):
            assert not deltas, "reasoning comes before the answer"
            thoughts.append(item.text)
        elif isinstance(item, TextDelta):
            deltas.append(item.text)
        else:
            assert isinstance(item, GenerationResult)
            result = item
    assert result is not None, "a stream ends with exactly one result"
    return thoughts, deltas, result


def generation_calls(fake: FakeUpstream) -> int:
    """Requests to a generation endpoint (not the models list)."""
    return sum(1 for r in fake.requests if r.path in ("/v1/chat/completions", "/v1/messages"))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, closing the pooled SDK clients before the loop goes (as workers must)."""

    async def main() -> T:
        try:
            return await coroutine
        finally:
            await aclose_clients()

    return asyncio.run(main())
