"""Engine results -> OpenAI's ``chat.completion`` and ``chat.completion.chunk`` objects."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from providers.adapters.base import (
    GenerationResult,
    ReasoningPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from usage.pricing import normalized

# Finish reasons in OpenAI's vocabulary. The Anthropic adapter already maps its stop
# reasons; they are listed again so that a raw one can never leak through.
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
}
DONE = b"data: [DONE]\n\n"


def finish_reason(reason: str) -> str:
    # Anything else (pause_turn, "" from a cache hit) ends the turn normally.
    return FINISH_REASONS.get(reason, "stop")


def thinking_blocks(parts: Iterable[ReasoningPart]) -> list[dict[str, str]]:
    """Anthropic's signed (or redacted) thinking, in the shape LiteLLM made the custom for
    OpenAI-format clients: a client sends them back on the assistant message of its next
    request, and they reach Anthropic unchanged, as its API requires."""
    blocks = []
    for part in parts:
        if part.redacted:
            blocks.append({"type": "redacted_thinking", "data": part.redacted})
        elif part.signature:
            blocks.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
    return blocks


def reasoning_fields(parts: Iterable[ReasoningPart]) -> dict[str, Any]:
    """`reasoning_content` (DeepSeek's name, which OpenAI-format clients read) and, where
    the provider signed its thinking, `thinking_blocks`; nothing without reasoning."""
    parts = list(parts)
    fields: dict[str, Any] = {}
    text = "".join(part.text for part in parts)
    if text:
        fields["reasoning_content"] = text
    blocks = thinking_blocks(parts)
    if blocks:
        fields["thinking_blocks"] = blocks
    return fields


def tool_call_body(call: ToolCallPart) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id, "type": "function", "function": function}


def tool_call_delta(delta: ToolCallDelta) -> dict[str, Any]:
    """A call's piece in a chunk: its first with id, type and name, later ones with more
    of the arguments only, as OpenAI streams them."""
    if delta.id:
        function = {"name": delta.name, "arguments": delta.arguments_fragment}
        piece = {"index": delta.index, "id": delta.id, "type": "function", "function": function}
    else:
        piece = {"index": delta.index, "function": {"arguments": delta.arguments_fragment}}
    return {"tool_calls": [piece]}


def choice_body(index: int, answer: GenerationResult) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    if answer.tool_calls:
        # Content null when the model only called tools, as OpenAI sends it.
        message["content"] = answer.text or None
        message["tool_calls"] = [tool_call_body(call) for call in answer.tool_calls]
    message.update(reasoning_fields(answer.reasoning))
    return {
        "index": index,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(answer.finish_reason),
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


@dataclass(frozen=True)
class Completion:
    """What every object of one answer shares: its id, creation time and model name."""

    model: str  # the name the client asked for
    # Whose usage this reports: Anthropic counts cache reads and writes apart from its
    # input tokens; OpenAI's prompt_tokens holds them all, so they are added back.
    provider_kind: str = ""
    id: str = field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(12)}")
    created: int = field(default_factory=lambda: int(time.time()))

    def body(self, result: GenerationResult) -> dict[str, Any]:
        answers = (result, *result.more_choices)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice_body(index, answer) for index, answer in enumerate(answers)],
            "usage": usage_body(normalized(self.provider_kind, result.usage)),
            "system_fingerprint": None,
        }

    def chunk(
        self,
        delta: dict[str, Any],
        *,
        finish: str | None = None,
        with_usage: bool = False,
        index: int = 0,
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._event([choice], with_usage, None)

    def usage_chunk(self, usage: Usage) -> bytes:
        """The extra last chunk of ``stream_options.include_usage``: no choices, the usage."""
        return self._event([], True, usage_body(normalized(self.provider_kind, usage)))

    def _event(
        self, choices: list[dict[str, Any]], with_usage: bool, usage: dict[str, Any] | None
    ) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if with_usage:
            body["usage"] = usage  # null on every chunk but the last, as OpenAI sends it
        return sse(body)


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
