"""Pieces shared by the adapters: the result of a stream, and usage estimates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from providers.adapters.base import (
    GenerationRequest,
    GenerationResult,
    ReasoningDelta,
    ReasoningPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from providers.errors import ProviderError

# A rough, provider-neutral tokens-per-character ratio for estimates only.
CHARS_PER_TOKEN = 4

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD.

    A model (or a proxy) may send a JSON escape such as ``\\ud800`` that decodes to a
    string no UTF-8 can carry: kept, it fails every later encode (the SSE frame, the
    answer's save, the /v1 stream) and leaves the answer streaming for good.
    (json pairs a valid escaped pair itself, so only lone ones are left here.)
    """
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


# What an image costs as input, for estimates only: OpenAI bills a 1024x1024 image at
# high detail as 765 tokens, Anthropic about (width x height) / 750, so ~1,400 at that size.
# The larger, so a budget hold errs on the side of holding too much.
IMAGE_TOKENS_ESTIMATE = 1600


def prompt_chars(request: GenerationRequest) -> int:
    """The prompt's characters: the system prompt, text and file contents (not images),
    and the tool definitions and response schema, which providers read (and bill) as
    input too: the prompt limit, estimates and budget holds all count them."""
    messages = sum(len(m.prompt_text()) + m.tool_chars() for m in request.messages)
    return len(request.system) + messages + _definition_chars(request)


def _definition_chars(request: GenerationRequest) -> int:
    """The JSON characters of the request's tools and response schema."""
    tools = [(tool.name, tool.description, tool.parameters) for tool in request.tools]
    wanted = request.response_format
    schema = wanted.schema if wanted is not None else None
    return (len(json.dumps(tools)) if tools else 0) + (len(json.dumps(schema)) if schema else 0)


def prompt_tokens_estimate(request: GenerationRequest) -> int:
    images = sum(len(m.images) for m in request.messages)
    return estimate_tokens("x" * prompt_chars(request)) + images * IMAGE_TOKENS_ESTIMATE


def estimate_usage(
    request: GenerationRequest, text: str, reported: Usage | None, *, reasoning: str = ""
) -> Usage:
    """Usage for a stream that ended before the provider reported it (marked estimated).

    Reasoning is output the provider bills (Anthropic's thinking, DeepSeek's reasoning):
    it counts as output, and as reasoning within it."""
    base = reported or Usage()
    thought = estimate_tokens(reasoning)
    return Usage(
        input_tokens=base.input_tokens or prompt_tokens_estimate(request),
        output_tokens=estimate_tokens(text) + thought,
        cached_input_tokens=base.cached_input_tokens,
        cache_write_tokens=base.cache_write_tokens,
        reasoning_tokens=thought,
        estimated=True,
    )


@dataclass
class StreamState:
    """What one stream has gathered so far, turned into a result at the end."""

    request: GenerationRequest
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    usage_complete: bool = False  # the provider's final usage arrived
    finish_reason: str = ""
    opened: bool = False  # the provider accepted the request (a 2xx came back)
    # Reasoning blocks already closed, and the text and signature of the one streaming.
    reasoning: list[ReasoningPart] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    thinking_signature: str = ""
    # The tool calls so far, by their index: [id, name, arguments' fragments].
    calls: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)
    # Anthropic's content block index of each tool_use block -> its call's index.
    tool_blocks: dict[object, int] = field(default_factory=dict)
    # The other answers of a request for several (n), by their index.
    others: dict[int, StreamState] = field(default_factory=dict)

    def choice(self, index: int) -> StreamState:
        """What answer `index` has gathered: this state for the first, a state of its own
        for each other (whose usage is in this one's)."""
        if index == 0:
            return self
        if index not in self.others:
            self.others[index] = StreamState(self.request, usage=Usage(), usage_complete=True)
        return self.others[index]

    def call(self, index: int, id: str, name: str, fragment: str) -> ToolCallDelta | None:
        """A piece of tool call `index`: the first names it, later ones add arguments.
        None when there is nothing to hand on (an empty fragment of a call begun)."""
        fragment = well_formed(fragment)
        if index not in self.calls:
            self.calls[index] = (id, name, [fragment])
            return ToolCallDelta(index, id, name, fragment)
        if not fragment:
            return None
        self.calls[index][2].append(fragment)
        return ToolCallDelta(index, "", "", fragment)

    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        # A call with no arguments sent none: "{}", as OpenAI writes it.
        return tuple(
            ToolCallPart(id, name, "".join(fragments) or "{}")
            for _, (id, name, fragments) in sorted(self.calls.items())
        )

    def think(self, text: str) -> ReasoningDelta:
        """A piece of reasoning joins the block being streamed (opened by the first)."""
        text = well_formed(text)
        self.thinking.append(text)
        return ReasoningDelta(text)

    def sign(self, signature: str) -> None:
        self.thinking_signature += signature  # signature_delta: usually one piece

    def close_thinking(self) -> None:
        """The block being streamed ended (a content_block_stop, or the stream's end)."""
        if self.thinking or self.thinking_signature:
            self.reasoning.append(ReasoningPart("".join(self.thinking), self.thinking_signature))
        self.thinking, self.thinking_signature = [], ""

    def redacted(self, data: str) -> None:
        self.close_thinking()
        self.reasoning.append(ReasoningPart("", redacted=data))

    def result(self, error: ProviderError | None) -> GenerationResult:
        # A block cut off mid-stream keeps its text (shown), unsigned (never sent back).
        self.close_thinking()
        text = "".join(self.parts)
        reasoning = tuple(self.reasoning)
        calls = self.tool_calls()
        usage = self.usage
        if usage is None and not self.opened:
            usage = Usage()  # refused before any work: nothing was consumed
        elif usage is None or not self.usage_complete:
            thought = "".join(part.text for part in reasoning)
            written = text + "".join(call.name + call.arguments for call in calls)
            usage = estimate_usage(self.request, written, usage, reasoning=thought)
        return GenerationResult(
            text=text,
            model=self.request.model,
            finish_reason="" if error else self.finish_reason,
            usage=usage,
            error=error,
            reasoning=reasoning,
            tool_calls=calls,
            more_choices=tuple(self.others[i].result(error) for i in sorted(self.others)),
        )
