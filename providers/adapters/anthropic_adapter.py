"""Anthropic messages over `anthropic.AsyncAnthropic`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

import anthropic
import httpx2
from anthropic.types import Message
from django.conf import settings

from providers.adapters import sse
from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    ImagePart,
    NamedTool,
    ReasoningDelta,
    ReasoningPart,
    StreamItem,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
    file_block,
    merge_turns,
)
from providers.adapters.clients import SdkAdapter
from providers.adapters.common import StreamState, well_formed
from providers.adapters.error_mapping import map_exception, provider_error
from providers.errors import ErrorKind

# Anthropic's stop reasons in the vocabulary the rest of Switchboard uses.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class AnthropicAdapter(SdkAdapter):
    sdk_class = anthropic.AsyncAnthropic
    # Spelled out so that ANTHROPIC_BASE_URL in the environment cannot redirect a key.
    sdk_default_base_url: ClassVar[str] = "https://api.anthropic.com"
    max_temperature: ClassVar[float] = 1.0
    accepts_image_urls: ClassVar[bool] = True  # the Messages API's URL image source
    # OpenAI sampling controls the Messages API has no equivalent for.
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {"seed", "presence_penalty", "frequency_penalty", "logit_bias", "n"}
    )
    # Structured outputs need a schema: there is no "any JSON object" mode.
    response_formats: ClassVar[frozenset[str]] = frozenset({"json_schema"})
    # A tool_use block's input is an object: arguments sent back must be one.
    tool_arguments_are_objects: ClassVar[bool] = True
    # The API requires max_tokens; this is used when the request leaves it open.
    default_max_tokens: ClassVar[int] = 4096
    # Extended thinking takes a budget of tokens (the API's minimum is 1,024); ours caps
    # it so that one answer's worst case stays a sane amount to hold against a budget.
    supports_thinking_budget: ClassVar[bool] = True
    min_thinking_budget: ClassVar[int] = 1024
    max_thinking_budget: ClassVar[int] = 32_000
    # OpenAI's reasoning_effort as a thinking budget (LiteLLM's mapping, which agent
    # frameworks already expect).
    # "none" asks for no thinking: no budget.
    effort_budgets: ClassVar[dict[str, int]] = {
        "minimal": 1024,
        "low": 1024,
        "medium": 2048,
        "high": 4096,
        "xhigh": 8192,
    }
    # Telemetry spans could carry prompt text.
    client_options: ClassVar[dict[str, Any]] = {"open_telemetry": False}
    # Anthropic has no embeddings API (its documentation points to Voyage AI).
    supports_embeddings: ClassVar[bool] = False

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        answer_tokens = (
            request.max_tokens
            if request.max_tokens is not None
            else min(self.default_max_tokens, settings.SWITCHBOARD["MAX_TOKENS_CAP"])
        )
        messages = [_message(m) for m in _turns(request.messages)]
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": answer_tokens,
        }
        temperature = request.temperature
        if request.thinking_budget is not None:
            budget = request.thinking_budget
            params["thinking"] = {"type": "enabled", "budget_tokens": budget}
            # Thinking counts against max_tokens, which must exceed the budget: the
            # request's max_tokens stays what it meant, room for the answer, on top.
            params["max_tokens"] = budget + answer_tokens
            # The API refuses any temperature but 1 with thinking on: left unset.
            temperature = None
        if request.system:
            params["system"] = request.system
        if self.provider.prompt_caching:
            _mark_for_cache(params)
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        if request.end_user:
            params["metadata"] = {"user_id": request.end_user}
        if request.response_format is not None and request.response_format.schema is not None:
            # Structured outputs: the model's text follows the schema.
            schema = {"type": "json_schema", "schema": request.response_format.schema}
            params["output_config"] = {"format": schema}
        # This SDK version no longer models `temperature` or `top_p`; the Messages API
        # takes them in the body, so they go there as given (0 stays 0).
        extra = {"temperature": temperature, "top_p": request.top_p}
        extra = {name: value for name, value in extra.items() if value is not None}
        if extra:
            params["extra_body"] = extra
        if request.tools:
            params["tools"] = [
                {
                    "name": tool.name,
                    **({"description": tool.description} if tool.description else {}),
                    # The API wants a schema even for a function without arguments.
                    "input_schema": tool.parameters or {"type": "object", "properties": {}},
                }
                for tool in request.tools
            ]
            if (choice := _tool_choice(request)) is not None:
                params["tool_choice"] = choice
        return params

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        state = StreamState(request)
        error = None
        try:
            # The SDK sends the request and raises for a refusal; the body is read by
            # `_events` rather than the SDK's stream (see `sse` for the measured cost).
            async with self._client().messages.with_streaming_response.create(
                **self._params(request), stream=True
            ) as response:
                # Leaving this block, on aclose() and cancellation too, closes the upstream
                # response at once.
                state.opened = True
                async with aclosing(_events(response.http_response)) as events:
                    async for event in events:
                        item = _apply_event(state, event)
                        if item is not None:
                            yield item
        except Exception as exc:
            error = map_exception(exc)
        yield state.result(error)

    async def complete(self, request: GenerationRequest) -> GenerationResult:
        try:
            message = await self._client().messages.create(**self._params(request))
            # A 200 that is not an answer (a web page, which the SDK hands back as a str,
            # or an error object) would otherwise crash below.
            if not isinstance(message, Message) or not isinstance(message.content, list):
                raise provider_error(ErrorKind.PROVIDER_ERROR)
        except Exception as exc:
            return StreamState(request).result(map_exception(exc))
        text = "".join(block.text for block in message.content if block.type == "text")
        text = well_formed(text)
        state = StreamState(request, parts=[text], finish_reason=_finish(message.stop_reason))
        for block in message.content:
            if block.type == "tool_use":
                state.call(len(state.calls), block.id, block.name, json.dumps(block.input))
            elif block.type == "thinking":
                state.think(block.thinking)
                state.sign(block.signature)
                state.close_thinking()
            elif block.type == "redacted_thinking":
                state.redacted(block.data)
        state.usage, state.usage_complete = _usage(message.usage.to_dict(warnings=False)), True
        return state.result(None)


def _tool_choice(request: GenerationRequest) -> dict[str, Any] | None:
    """OpenAI's tool_choice and parallel_tool_calls as Anthropic's one tool_choice."""
    choice = request.tool_choice
    if isinstance(choice, NamedTool):
        wire: dict[str, Any] = {"type": "tool", "name": choice.name}
    elif choice is None:
        wire = {"type": "auto"}
    else:
        wire = {"type": {"auto": "auto", "none": "none", "required": "any"}[choice]}
    if request.parallel_tool_calls is False and wire["type"] != "none":
        wire["disable_parallel_tool_use"] = True
    elif choice is None:
        return None  # nothing asked: the API's default
    return wire


def _turns(messages: tuple[ChatMessage, ...]) -> list[ChatMessage]:
    """The messages, with each run of user turns that carries tool results made one turn:
    the API wants every result of an assistant's calls in the one user turn after it."""
    turns: list[ChatMessage] = []
    for message in messages:
        previous = turns[-1] if turns else None
        if (
            previous is not None
            and previous.role == message.role == "user"
            and (previous.tool_results or message.tool_results)
        ):
            turns[-1] = merge_turns((previous, message))[0]
        else:
            turns.append(message)
    return turns


def _message(message: ChatMessage) -> dict[str, Any]:
    """One message in the Messages API shape: a plain string for text alone, else blocks
    in the message's order. A thinking block goes back only with its signature (the API
    refuses one without), a redacted one with its data, and empty text blocks are left
    out (refused too)."""
    if all(isinstance(part, TextPart) for part in message.parts):
        return {"role": message.role, "content": message.text}
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ReasoningPart):
            if part.redacted:
                blocks.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature}
                )
        elif isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": _image_source(part)})
        elif isinstance(part, ToolCallPart):
            blocks.append(
                {"type": "tool_use", "id": part.id, "name": part.name, "input": _input(part)}
            )
        elif isinstance(part, ToolResultPart):
            result = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
            blocks.append(result)
        else:
            text = part.text if isinstance(part, TextPart) else file_block(part)
            if text:
                blocks.append({"type": "text", "text": text})
    return {"role": message.role, "content": blocks}


def _input(call: ToolCallPart) -> Any:
    """A call's arguments as the object Anthropic wants (a client sent them as JSON text;
    text that is no object goes as {} rather than a request the API refuses)."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


_EPHEMERAL = {"type": "ephemeral"}


def _mark_for_cache(params: dict[str, Any]) -> None:
    """Cache breakpoints on the system prompt and at the end of the conversation.

    The end moves on with every turn; the API looks back from a breakpoint for the
    longest prefix it has cached, so each turn reads what the one before wrote and
    writes only what is new (Anthropic's pattern for conversations). Two of the four
    breakpoints a request may carry.
    """
    if "system" in params:
        params["system"] = [{"type": "text", "text": params["system"], "cache_control": _EPHEMERAL}]
    messages = params["messages"]
    if not messages:
        return
    last = messages[-1]
    blocks = last["content"]
    if isinstance(blocks, str):
        blocks = [{"type": "text", "text": blocks}] if blocks else []
    markable = [i for i, block in enumerate(blocks) if block["type"] != "thinking"]
    if markable:  # thinking blocks cannot carry a breakpoint
        blocks = list(blocks)
        blocks[markable[-1]] = {**blocks[markable[-1]], "cache_control": _EPHEMERAL}
        messages[-1] = {**last, "content": blocks}


def _image_source(part: ImagePart) -> dict[str, str]:
    if part.url:
        return {"type": "url", "url": part.url}
    data = base64.b64encode(part.data).decode("ascii")
    return {"type": "base64", "media_type": part.media_type, "data": data}


async def _events(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """The parsed events of a messages stream, filtered as the SDK's own stream does.

    `ping` and unnamed events are skipped, and an `error` event raises what the SDK
    raises for it (a status error with the stream's 200), so that `map_exception` gives
    the same PROVIDER_ERROR as before. A failed read raises the HTTP layer's error, which
    the SDK's stream let through as well.
    """
    answered = stopped = False
    async with aclosing(sse.events(response)) as events:
        async for name, data in events:
            if name == "error":
                raise anthropic.APIStatusError(
                    "An error event arrived in the stream.", response=response, body=_body(data)
                )
            if name and name != "ping" and data:
                answered, stopped = True, stopped or name == "message_stop"
                try:
                    event = json.loads(data)
                except ValueError:
                    # A 200 streaming something else than events: the provider failed
                    # (another target may answer), not an unexpected error of ours.
                    raise provider_error(ErrorKind.PROVIDER_ERROR) from None
                yield event
    if not answered:
        # A 200 whose body held no event (a web page, a JSON error object): not an empty
        # answer that completed, but a provider that did not answer.
        raise provider_error(ErrorKind.PROVIDER_ERROR)
    if not stopped:
        # The body ended cleanly before message_stop (a proxy closing the stream): a cut
        # answer, possibly empty, that must fail (or fall back), not pass for a whole one.
        raise anthropic.APIConnectionError(request=response.request)


def _body(data: bytes) -> object:
    """An `error` event's data as the SDK's error carried it: the JSON, else the text."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode(errors="replace")


def _apply_event(
    state: StreamState, event: dict[str, Any]
) -> TextDelta | ReasoningDelta | ToolCallDelta | None:
    """Fold one stream event into `state`; return the delta it carries, if any.

    Extended thinking streams as `thinking` blocks (thinking_delta pieces, then a
    signature_delta) before the text; a `redacted_thinking` block arrives whole, its
    opaque data kept to go back on the next turn."""
    kind = event.get("type")
    if kind == "message_start":
        state.usage = _usage(event["message"]["usage"])
    elif kind == "content_block_start":
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            # Calls are numbered among calls, whatever blocks come between them.
            state.tool_blocks[event.get("index")] = index = len(state.calls)
            return state.call(index, str(block.get("id", "")), str(block.get("name", "")), "")
        if block.get("type") == "redacted_thinking":
            state.redacted(str(block.get("data", "")))
        elif block.get("type") == "thinking":
            state.close_thinking()
            if block.get("thinking"):
                return state.think(str(block["thinking"]))
    elif kind == "content_block_delta":
        delta = event["delta"]
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            text = well_formed(str(delta["text"]))
            if text:
                state.parts.append(text)
                return TextDelta(text)
        elif delta_type == "thinking_delta" and delta.get("thinking"):
            return state.think(str(delta["thinking"]))
        elif delta_type == "signature_delta":
            state.sign(str(delta.get("signature", "")))
        elif delta_type == "input_json_delta":
            call = state.tool_blocks.get(event.get("index"))
            if call is not None:
                return state.call(call, "", "", str(delta.get("partial_json", "")))
    elif kind == "content_block_stop":
        state.close_thinking()
    elif kind == "message_delta":
        # message_delta usage is cumulative: it replaces what message_start said, never adds.
        state.usage = _usage(event["usage"], previous=state.usage)
        state.usage_complete = True
        state.finish_reason = _finish(event["delta"].get("stop_reason"))
    return None


def _usage(usage: Mapping[str, Any], previous: Usage | None = None) -> Usage:
    """Usage from a `usage` object as sent; what it leaves out is kept from `previous`."""
    before = previous or Usage()

    def count(name: str, fallback: int) -> int:
        value = usage.get(name)
        return fallback if value is None else int(value)

    return Usage(
        input_tokens=count("input_tokens", before.input_tokens),
        output_tokens=count("output_tokens", before.output_tokens),
        cached_input_tokens=count("cache_read_input_tokens", before.cached_input_tokens),
        cache_write_tokens=count("cache_creation_input_tokens", before.cache_write_tokens),
    )


def _finish(stop_reason: str | None) -> str:
    return _FINISH_REASONS.get(stop_reason or "", stop_reason or "")
