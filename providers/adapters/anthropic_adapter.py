"""Anthropic messages over `anthropic.AsyncAnthropic`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import anthropic
from django.conf import settings

from providers.adapters.base import (
    GenerationRequest,
    GenerationResult,
    StreamItem,
    TextDelta,
    Usage,
)
from providers.adapters.clients import SdkAdapter
from providers.adapters.common import StreamState
from providers.adapters.error_mapping import map_exception

if TYPE_CHECKING:
    pass

# Anthropic's stop reasons in the vocabulary the rest of Switchboard uses.
_FINISH_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicAdapter(SdkAdapter):
    sdk_class = anthropic.AsyncAnthropic
    # Spelled out so that ANTHROPIC_BASE_URL in the environment cannot redirect a key.
    sdk_default_base_url: ClassVar[str] = "https://api.anthropic.com"
    max_temperature: ClassVar[float] = 1.0
    # The API requires max_tokens; this is used when the request leaves it open.
    default_max_tokens: ClassVar[int] = 4096
    # Telemetry spans could carry prompt text.
    client_options: ClassVar[dict[str, Any]] = {"open_telemetry": False}

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens
            if request.max_tokens is not None
            else min(self.default_max_tokens, settings.SWITCHBOARD["MAX_TOKENS_CAP"]),
        }
        if request.system:
            params["system"] = request.system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        # This SDK version no longer models `temperature` or `top_p`; the Messages API
        # takes them in the body, so they go there as given (0 stays 0).
        extra = {"temperature": request.temperature, "top_p": request.top_p}
        extra = {name: value for name, value in extra.items() if value is not None}
        if extra:
            params["extra_body"] = extra
        return params

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        state = StreamState(request)
        error = None
        try:
            stream = await self._client().messages.create(**self._params(request), stream=True)
            state.opened = True
            try:
                async for event in stream:
                    text = _apply_event(state, event)
                    if text:
                        state.parts.append(text)
                        yield TextDelta(text)
            finally:
                # Runs on aclose() and cancellation too: the upstream response closes now.
                await stream.close()
        except Exception as exc:
            error = map_exception(exc)
        yield state.result(error)

    async def complete(self, request: GenerationRequest) -> GenerationResult:
        try:
            message = await self._client().messages.create(**self._params(request))
        except Exception as exc:
            return StreamState(request).result(map_exception(exc))
        text = "".join(block.text for block in message.content if block.type == "text")
        state = StreamState(request, parts=[text], finish_reason=_finish(message.stop_reason))
        state.usage, state.usage_complete = _usage(message.usage), True
        return state.result(None)


def _apply_event(state: StreamState, event: Any) -> str:
    """Fold one stream event into `state`; return its text, if it carries any."""
    if event.type == "message_start":
        state.usage = _usage(event.message.usage)
    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
        return str(event.delta.text)
    elif event.type == "message_delta":
        # message_delta usage is cumulative: it replaces what message_start said, never adds.
        state.usage = _usage(event.usage, previous=state.usage)
        state.usage_complete = True
        state.finish_reason = _finish(event.delta.stop_reason)
    return ""


def _usage(usage: Any, previous: Usage | None = None) -> Usage:
    """Usage from a `Usage` or cumulative `MessageDeltaUsage`, keeping what it leaves out."""
    before = previous or Usage()

    def count(name: str, fallback: int) -> int:
        value = getattr(usage, name, None)
        return fallback if value is None else int(value)

    return Usage(
        input_tokens=count("input_tokens", before.input_tokens),
        output_tokens=count("output_tokens", before.output_tokens),
        cached_input_tokens=count("cache_read_input_tokens", before.cached_input_tokens),
        cache_write_tokens=count("cache_creation_input_tokens", before.cache_write_tokens),
    )


def _finish(stop_reason: str | None) -> str:
    return _FINISH_REASONS.get(stop_reason or "", stop_reason or "")
