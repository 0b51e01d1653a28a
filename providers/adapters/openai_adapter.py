"""OpenAI chat completions over `openai.AsyncOpenAI`: OpenAI, DeepSeek, OpenAI-compatible."""

from __future__ import annotations

import base64
import binascii
import json
import ssl
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import replace
from typing import Any, ClassVar

import anyio
import httpx2
import openai
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from providers.adapters import sse
from providers.adapters.base import (
    ChatMessage,
    FilePart,
    GenerationRequest,
    GenerationResult,
    ImagePart,
    NamedTool,
    ResponseFormat,
    StreamItem,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    file_block,
)
from providers.adapters.clients import SdkAdapter
from providers.adapters.common import StreamState, well_formed
from providers.adapters.embeddings import (
    EmbeddingRequest,
    EmbeddingResult,
    embedding_tokens_estimate,
    float32_bytes,
)
from providers.adapters.error_mapping import map_exception, provider_error
from providers.errors import ErrorKind
from providers.redaction import NO_KEY_PLACEHOLDER

# What the SDK's stream turns into `APIConnectionError` when a read fails (anyio's
# EndOfStream and bare TLS errors included), so the same failures stay NETWORK errors.
_CONNECTION_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)


def _auth_options(client: openai.AsyncOpenAI) -> dict[str, Any]:
    """Per-call options that leave the Authorization header out for a provider with no key.

    The SDK will not build a client without a key, so a keyless provider's client gets
    NO_KEY_PLACEHOLDER, and the SDK sends ``Authorization: Bearer <api_key>`` on every
    call. Sending the stand-in would be wrong: Ollama ignores the header, but a llama.cpp
    or vLLM server started with --api-key answers a wrong key with 401, and a proxy in
    front may log it as if it were a credential. So the header is left out with the
    SDK's documented `omit` (its own error text names that way): the request carries no
    credential at all, which is what a server without keys expects and accepts (the
    fake upstream's `keyless` knob does the same).
    """
    if client.api_key != NO_KEY_PLACEHOLDER:
        return {}
    return {"extra_headers": {"Authorization": openai.omit}}


class OpenAIAdapter(SdkAdapter):
    sdk_class = openai.AsyncOpenAI
    # Spelled out rather than left to the SDK, which would read OPENAI_BASE_URL from the
    # environment: a key goes only where its provider is configured to send it.
    sdk_default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    max_temperature: ClassVar[float] = 2.0
    # OpenAI's current name for the limit; compatible servers still use "max_tokens".
    max_tokens_param: ClassVar[str] = "max_completion_tokens"
    # OpenAI fetches an https image URL itself.
    accepts_image_urls: ClassVar[bool] = True
    unsupported_params: ClassVar[frozenset[str]] = frozenset()  # every OpenAI control
    response_formats: ClassVar[frozenset[str]] = frozenset({"json_object", "json_schema"})
    tool_arguments_are_objects: ClassVar[bool] = False  # the text goes back as it came
    supports_embeddings: ClassVar[bool] = True
    embeds_token_arrays: ClassVar[bool] = True  # ids of OpenAI's own tokenizers
    # Vectors asked for as base64: the float32 values themselves, at a third of the JSON
    # (the SDK's own default). Compatible servers are asked for floats, which all speak.
    embeddings_encoding: ClassVar[str] = "base64"
    # No budget to send: OpenAI's reasoning models and DeepSeek's reasoner think on their
    # own, and a request's thinking_budget is ignored. Their reasoning still streams.
    supports_thinking_budget: ClassVar[bool] = False
    effort_budgets: ClassVar[dict[str, int]] = {}  # reasoning_effort goes as it is

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [wire for m in request.messages for wire in _messages(m)]
        params: dict[str, Any] = {"model": request.model, "messages": messages}
        if request.max_tokens is not None:
            params[self.max_tokens_param] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.top_p is not None:
            params["top_p"] = request.top_p
        if request.stop:
            params["stop"] = list(request.stop)
        optional = {
            "seed": request.seed,
            "presence_penalty": request.presence_penalty,
            "frequency_penalty": request.frequency_penalty,
            "logit_bias": dict(request.logit_bias) or None,
            "user": request.end_user or None,
            "reasoning_effort": request.reasoning_effort or None,
            "n": request.n,
        }
        params.update({name: value for name, value in optional.items() if value is not None})
        if request.response_format is not None:
            params["response_format"] = _response_format(request.response_format)
        if request.tools:
            params["tools"] = [_tool(tool) for tool in request.tools]
            if request.tool_choice is not None:
                params["tool_choice"] = _tool_choice(request.tool_choice)
            if request.parallel_tool_calls is not None:
                params["parallel_tool_calls"] = request.parallel_tool_calls
        return params

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]:
        state = StreamState(request)
        error = None
        try:
            # The SDK sends the request and raises for a refusal; the body is read by
            # `_chunks` rather than the SDK's stream (see `sse` for the measured cost).
            client = self._client()
            async with client.chat.completions.with_streaming_response.create(
                **self._params(request),
                stream=True,
                stream_options={"include_usage": True},
                **_auth_options(client),
            ) as response:
                # Leaving this block, on aclose() and cancellation too, closes the upstream
                # response at once.
                state.opened = True
                async with aclosing(_chunks(response.http_response)) as chunks:
                    async for chunk in chunks:
                        usage = chunk.get("usage")
                        if usage is not None:
                            state.usage, state.usage_complete = _usage(usage), True
                        for choice in chunk.get("choices") or ():
                            number = int(choice.get("index") or 0)  # n > 1: which answer
                            answer = state.choice(number)
                            if choice.get("finish_reason"):
                                answer.finish_reason = choice["finish_reason"]
                            delta = choice.get("delta") or {}
                            if thought := _reasoning(delta):
                                reasoning = answer.think(thought)
                                if not number:  # the others' is kept, not streamed
                                    yield reasoning
                            content = delta.get("content")
                            if content:
                                content = well_formed(content)
                                answer.parts.append(content)
                                yield TextDelta(content, number)
                            for call in delta.get("tool_calls") or ():
                                if (piece := _call_piece(answer, call)) is not None:
                                    yield replace(piece, choice=number)
        except Exception as exc:
            error = map_exception(exc)
        yield state.result(error)

    async def complete(self, request: GenerationRequest) -> GenerationResult:
        try:
            client = self._client()
            response = await client.chat.completions.create(
                **self._params(request), **_auth_options(client)
            )
            # A 200 that is not an answer (a web page, which the SDK hands back as a str,
            # or an error object) would otherwise be an empty answer or a crash.
            if not isinstance(response, ChatCompletion) or not response.choices:
                raise provider_error(ErrorKind.PROVIDER_ERROR)
        except Exception as exc:
            state = StreamState(request)
            return state.result(map_exception(exc))
        first, *others = [_choice_state(request, choice) for choice in response.choices]
        if response.usage is not None:
            first.usage = _usage(response.usage.to_dict(warnings=False))
            first.usage_complete = True
        result = first.result(None)
        if others:  # n > 1; the usage above covers every answer
            result.more_choices = tuple(other.result(None) for other in others)
        return result

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        params: dict[str, Any] = {
            "model": request.model,
            "input": [item if isinstance(item, str) else list(item) for item in request.inputs],
            # Always named: the SDK then hands the data back as sent, for `_vector` to read.
            "encoding_format": self.embeddings_encoding,
        }
        if request.dimensions is not None:
            params["dimensions"] = request.dimensions
        try:
            client = self._client()
            response = await client.embeddings.create(**params, **_auth_options(client))
            # A 200 that is not an answer (a web page, which the SDK hands back as a str),
            # or vectors that do not pair one to one with the inputs, is no answer.
            if not isinstance(response, CreateEmbeddingResponse):
                raise provider_error(ErrorKind.PROVIDER_ERROR)
            data = sorted(response.data, key=lambda item: item.index)
            if [item.index for item in data] != list(range(len(request.inputs))):
                raise provider_error(ErrorKind.PROVIDER_ERROR)
            vectors = [_vector(item.embedding) for item in data]
        except Exception as exc:
            # Refused or unreadable: no usage can be known, and a refusal consumed none.
            return EmbeddingResult(model=request.model, error=map_exception(exc))
        # Typed as never None, but a compatible server may leave usage out: then estimated.
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None)
        return EmbeddingResult(
            model=request.model,
            vectors=vectors,
            usage=Usage(input_tokens=tokens)
            if isinstance(tokens, int)
            else Usage(input_tokens=embedding_tokens_estimate(request), estimated=True),
        )

    async def list_models(self) -> list[str]:
        client = self._client()
        return sorted([model.id async for model in client.models.list(**_auth_options(client))])


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Self-hosted servers (Ollama, llama.cpp, vLLM) speaking the OpenAI format."""

    max_tokens_param: ClassVar[str] = "max_tokens"
    # DeepSeek takes no images at all, and local servers (Ollama, llama.cpp) read data
    # URLs only: a URL would fail there, or worse, be fetched from inside the network.
    accepts_image_urls: ClassVar[bool] = False
    # Their models' tokenizers are not OpenAI's: ids a client counted with tiktoken (as
    # LangChain's OpenAIEmbeddings does by default) would embed other words. Text only.
    embeds_token_arrays: ClassVar[bool] = False
    embeddings_encoding: ClassVar[str] = "float"  # base64 is not offered by every server


class DeepSeekAdapter(OpenAICompatibleAdapter):
    """DeepSeek: OpenAI's chat format, and no embeddings API."""

    supports_embeddings: ClassVar[bool] = False


async def _chunks(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """The parsed chunks of a chat completions stream, up to `[DONE]`.

    Checked as the SDK's own stream checks them, so that `map_exception` gives the same
    error as before: a chunk carrying `error` raises `APIError`, and a failed read
    raises `APITimeoutError` / `APIConnectionError` rather than the HTTP layer's error.
    """
    async with aclosing(sse.events(response)) as events:
        answered = finished = False
        try:
            async for _, data in events:
                if data.startswith(b"[DONE]"):
                    await sse.drain(response, events)
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    # A 200 streaming something else than chunks: the provider failed
                    # (another target may answer), not an unexpected error of ours.
                    raise provider_error(ErrorKind.PROVIDER_ERROR) from None
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise openai.APIError(
                        "An error arrived in the stream.", response.request, body=chunk["error"]
                    )
                answered = True
                finished = finished or any(
                    choice.get("finish_reason") for choice in chunk.get("choices") or ()
                )
                yield chunk
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=response.request) from exc
        except _CONNECTION_ERRORS as exc:
            raise openai.APIConnectionError(request=response.request) from exc
        if not answered:
            # A 200 whose body held no event (a web page, a JSON error object): not an
            # empty answer that completed, but a provider that did not answer.
            raise provider_error(ErrorKind.PROVIDER_ERROR)
        if not finished:
            # The body ended cleanly, but before [DONE] and any finish_reason (a proxy or
            # load balancer closing the stream): a cut answer, possibly empty, that must
            # fail (or fall back to the alias's next target), not pass for a whole one.
            raise openai.APIConnectionError(request=response.request)


def _reasoning(delta: Mapping[str, Any]) -> str:
    """The reasoning a chunk's delta (or a whole message) carries: DeepSeek's
    `reasoning_content`, or `reasoning` as newer vLLM and Ollama name it."""
    for name in ("reasoning_content", "reasoning"):
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _call_piece(state: StreamState, call: Mapping[str, Any]) -> ToolCallDelta | None:
    """A streamed `delta.tool_calls` entry: id and name in a call's first, then pieces
    of its arguments, all under its index."""
    function = call.get("function") or {}
    index = call.get("index")
    if not isinstance(index, int):
        index = len(state.calls)
    return state.call(
        index,
        str(call.get("id") or ""),
        str(function.get("name") or ""),
        str(function.get("arguments") or ""),
    )


def _tool(tool: ToolSpec) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if isinstance(choice, NamedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def _messages(message: ChatMessage) -> list[dict[str, Any]]:
    """One message as chat completions messages: each tool result is a `tool` message of
    its own (first, answering the calls before), then what else the turn says; an
    assistant's tool calls go in its `tool_calls`."""
    results = message.tool_results
    calls = message.tool_calls
    if not results and not calls:
        return [_message(message)]
    wire = [
        {"role": "tool", "tool_call_id": result.call_id, "content": result.content}
        for result in results
    ]
    rest = ChatMessage(
        message.role,
        tuple(p for p in message.parts if not isinstance(p, ToolCallPart | ToolResultPart)),
    )
    if calls:
        assistant: dict[str, Any] = _message(rest) if rest.parts else {"role": "assistant"}
        # Content null when the turn is its calls alone, as OpenAI itself sends it.
        assistant["content"] = assistant.get("content") or None
        assistant["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in calls
        ]
        wire.append(assistant)
    elif rest.prompt_text().strip() or rest.images:
        wire.append(_message(rest))
    return wire


def _message(message: ChatMessage) -> dict[str, Any]:
    """One message in the chat completions shape.

    Text (and files, as text under their names) goes as a plain string unless there are
    images: every compatible server reads a string, not all read a list of parts.
    Reasoning is left out: DeepSeek refuses its own `reasoning_content` sent back, and
    OpenAI keeps its reasoning to itself.
    """
    if not message.images:
        return {"role": message.role, "content": message.prompt_text()}
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            content.append({"type": "image_url", "image_url": _image_url(part)})
        elif isinstance(part, TextPart | FilePart):
            text = part.text if isinstance(part, TextPart) else file_block(part)
            if text:
                content.append({"type": "text", "text": text})
    return {"role": message.role, "content": content}


def _choice_state(request: GenerationRequest, choice: Any) -> StreamState:
    """One answer of a completion: its text, reasoning and calls."""
    text = well_formed(choice.message.content or "")
    # Typed as never None, but a compatible server may send null: read it as sent.
    finish_reason = getattr(choice, "finish_reason", None) or ""
    state = StreamState(request, parts=[text], finish_reason=finish_reason)
    if thought := _reasoning(choice.message.model_extra or {}):
        state.think(thought)
    for index, call in enumerate(choice.message.tool_calls or ()):
        function = getattr(call, "function", None)  # custom tools have none: left out
        if function is not None:
            state.call(index, call.id, function.name, function.arguments)
    state.usage, state.usage_complete = Usage(), True  # the completion's usage is apart
    return state


def _response_format(wanted: ResponseFormat) -> dict[str, Any]:
    if wanted.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": wanted.name, "strict": wanted.strict}
    if wanted.schema is not None:
        schema["schema"] = wanted.schema
    return {"type": "json_schema", "json_schema": schema}


def _image_url(part: ImagePart) -> dict[str, str]:
    url = part.url or f"data:{part.media_type};base64,{base64.b64encode(part.data).decode()}"
    return {"url": url, "detail": part.detail} if part.detail else {"url": url}


def _usage(usage: Mapping[str, Any]) -> Usage:
    """Usage from a `usage` object as the API sends it."""
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cached_input_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


def _vector(embedding: object) -> bytes:
    """One vector as little-endian float32 bytes, from base64 or a list of numbers."""
    if isinstance(embedding, str):
        try:
            raw = base64.b64decode(embedding, validate=True)
        except binascii.Error:
            raise provider_error(ErrorKind.PROVIDER_ERROR) from None
        if len(raw) % 4:
            raise provider_error(ErrorKind.PROVIDER_ERROR)
        return raw
    if isinstance(embedding, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in embedding
    ):
        return float32_bytes(embedding)
    raise provider_error(ErrorKind.PROVIDER_ERROR)
