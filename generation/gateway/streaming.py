"""One streamed answer, relayed from the engine to the client as OpenAI chunks.

No queue hop: the engine's async iterator is read inside the response iterator, so a
token goes out as soon as it arrives. The first item is awaited before the response
starts, so that a call failing before any text gets a real status code (the SDK
raises `RateLimitError`, not a generic stream error). A client that goes away cancels
the response task; the engine stream is closed at once (the upstream connection with
it) and what was consumed is metered from the `StreamTracker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from generation.api_services import close_call
from generation.gateway.errors import from_provider_error
from generation.gateway.shapes import (
    DONE,
    Completion,
    finish_reason,
    sse,
    thinking_blocks,
    tool_call_delta,
)
from providers import engine
from providers.adapters.base import (
    GenerationResult,
    ReasoningDelta,
    StreamItem,
    TextDelta,
    ToolCallDelta,
)
from routing.engine import RoutedTracker, stream_routed

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from providers.adapters.base import GenerationRequest
    from providers.models import Provider
    from routing.plans import Target
    from usage.models import Reservation


class GatewayStream:
    def __init__(
        self,
        *,
        user: User,
        provider: Provider,
        request: GenerationRequest,
        reservation: Reservation,
        request_id: str,
        completion: Completion,
        include_usage: bool,
        alias: str = "",
        targets: list[Target] | None = None,
    ) -> None:
        """`targets` (and `alias`): a call routed through an alias, tried in that order
        (`provider` is then the first)."""
        self.user, self.provider, self.request_id = user, provider, request_id
        self.reservation = reservation
        self.completion, self.include_usage = completion, include_usage
        self.alias = alias
        self.routed: RoutedTracker | None = None
        self.tracker: engine.StreamTracker
        if targets:
            self.tracker = self.routed = RoutedTracker()
            self.items = stream_routed(targets, request, tracker=self.routed)
        else:
            self.tracker = engine.StreamTracker()
            self.items = engine.stream_generation(provider, request, tracker=self.tracker)
        self.result: GenerationResult | None = None
        self.closed = False

    @property
    def answering(self) -> Provider:
        """The provider of the answer: a routed call's last target tried."""
        if self.routed is not None and self.routed.target is not None:
            return self.routed.target.provider
        return self.provider

    async def start(self) -> StreamItem:
        """The first item. A failure or cancellation here closes and meters the stream."""
        try:
            first = await anext(self.items)
        except BaseException:
            await self.close()
            raise
        if isinstance(first, GenerationResult):
            self.result = first
            if first.error is not None:
                await self.close()
        return first

    async def events(self, first: StreamItem) -> AsyncIterator[bytes]:
        """The response body: role chunk, content and tool call chunks, finish, usage,
        ``[DONE]``."""
        completion, with_usage = self.completion, self.include_usage
        try:
            item = first
            yield completion.chunk({"role": "assistant", "content": ""}, with_usage=with_usage)
            while not isinstance(item, GenerationResult):
                if isinstance(item, TextDelta):
                    text = {"content": item.text}
                    yield completion.chunk(text, with_usage=with_usage, index=item.choice)
                elif isinstance(item, ReasoningDelta):
                    reasoning = {"reasoning_content": item.text}
                    yield completion.chunk(reasoning, with_usage=with_usage)
                elif isinstance(item, ToolCallDelta):
                    call = tool_call_delta(item)
                    yield completion.chunk(call, with_usage=with_usage, index=item.choice)
                item = await anext(self.items)
            self.result = result = item
            # Usage is reported in the way of the provider that answered.
            completion = replace(completion, provider_kind=self.answering.kind)
            blocks = thinking_blocks(result.reasoning)
            if blocks and result.error is None:
                # The signatures arrive at the end of each block: all in one last delta.
                delta = {"thinking_blocks": blocks}
                yield completion.chunk(delta, with_usage=with_usage)
            # Metered before the last chunks: a client that saw [DONE] finds its record.
            await self.close()
            if result.error is not None:
                # Mid-stream failure: OpenAI's in-stream error event (the SDK raises APIError).
                yield sse(from_provider_error(result.error).body())
                return
            for index, answer in enumerate((result, *result.more_choices)):
                finish = finish_reason(answer.finish_reason)
                yield completion.chunk({}, finish=finish, with_usage=with_usage, index=index)
            if with_usage:
                yield completion.usage_chunk(result.usage)
            yield DONE
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the engine stream (and the upstream one), then meter: exactly once."""
        if self.closed:
            return
        self.closed = True
        await self.items.aclose()
        result = self.result or self.tracker.interrupted_result()
        meter = sync_to_async(close_call)(
            user=self.user,
            provider=self.answering,
            reservation=self.reservation,
            result=result,
            request_id=self.request_id,
            alias=self.alias,
        )
        # Shielded: the task may be cancelled again (server shutdown); the write must land.
        await asyncio.shield(meter)
