"""OpenAI chat completions over `openai.AsyncOpenAI`: OpenAI, DeepSeek, OpenAI-compatible."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import openai

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


class OpenAIAdapter(SdkAdapter):
    sdk_class = openai.AsyncOpenAI
    # Spelled out rather than left to the SDK, which would read OPENAI_BASE_URL from the
    # environment: a key goes only where its provider is configured to send it.
    sdk_default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    max_temperature: ClassVar[float] = 2.0
    # OpenAI's current name for the limit; compatible servers still use "max_tokens".
    max_tokens_param: ClassVar[str] = "max_completion_tokens"

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.max_tokens is not None:
            params[self.max_tokens_param] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop"] = list(request.stop)
        return params

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        state = StreamState(request)
        error = None
        try:
            stream = await self._client().chat.completions.create(
                **self._params(request), stream=True, stream_options={"include_usage": True}
            )
            state.opened = True
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        state.usage, state.usage_complete = _usage(chunk.usage), True
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            state.finish_reason = choice.finish_reason
                        if choice.delta.content:
                            state.parts.append(choice.delta.content)
                            yield TextDelta(choice.delta.content)
            finally:
                # Runs on aclose() and cancellation too: the upstream response closes now.
                await stream.close()
        except Exception as exc:
            error = map_exception(exc)
        yield state.result(error)

    async def complete(self, request: GenerationRequest) -> GenerationResult:
        try:
            response = await self._client().chat.completions.create(**self._params(request))
        except Exception as exc:
            state = StreamState(request)
            return state.result(map_exception(exc))
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice else ""
        state = StreamState(
            request, parts=[text], finish_reason=(choice.finish_reason or "") if choice else ""
        )
        if response.usage is not None:
            state.usage, state.usage_complete = _usage(response.usage), True
        return state.result(None)


class OpenAICompatibleAdapter(OpenAIAdapter):
    """DeepSeek and self-hosted servers (Ollama, llama.cpp, vLLM) speaking the OpenAI format."""

    max_tokens_param: ClassVar[str] = "max_tokens"


def _usage(usage: Any) -> Usage:
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
    )
