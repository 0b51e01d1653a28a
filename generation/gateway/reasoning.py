"""Reasoning on /v1, both ways: `reasoning_effort` in, and an assistant message's
reasoning (`reasoning_content`, signed `thinking_blocks`) sent back by the client."""

from __future__ import annotations

from typing import Any

from generation.gateway.errors import GatewayError, bad_request, invalid_type
from providers.adapters.base import ReasoningPart

# The keys of an assistant message that carry its reasoning.
REASONING_KEYS = frozenset({"reasoning_content", "thinking_blocks"})
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # OpenAI's values


def reasoning_effort(value: Any) -> str:
    if value is None:
        return ""
    if value not in EFFORTS:
        raise bad_request(
            "Invalid 'reasoning_effort': it must be 'none', 'minimal', 'low', 'medium', "
            "'high' or 'xhigh'.",
            param="reasoning_effort",
            code="invalid_value",
        )
    return str(value)


def _invalid(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="invalid_value")


def sent_back(item: dict[str, Any], param: str) -> tuple[ReasoningPart, ...]:
    """The reasoning of an assistant message from an earlier answer. Signed blocks go back
    to Anthropic as they were; plain `reasoning_content` is text no provider takes back
    (DeepSeek refuses it, Anthropic wants the signature), kept only as a record."""
    blocks, text = item.get("thinking_blocks"), item.get("reasoning_content")
    if text is not None and not isinstance(text, str):
        raise invalid_type(f"{param}.reasoning_content", "a string", text)
    if blocks is None:
        return (ReasoningPart(text),) if text else ()
    if not isinstance(blocks, list):
        raise invalid_type(f"{param}.thinking_blocks", "an array", blocks)
    parts = []
    for index, block in enumerate(blocks):
        where = f"{param}.thinking_blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking":
            thought, signature = block.get("thinking"), block.get("signature")
            if not isinstance(thought, str) or not isinstance(signature, str) or not signature:
                raise _invalid(where, f"'{where}' needs 'thinking' and its 'signature'.")
            parts.append(ReasoningPart(thought, signature=signature))
        elif kind == "redacted_thinking":
            data = block.get("data")
            if not isinstance(data, str) or not data:
                raise _invalid(where, f"'{where}' needs its 'data'.")
            parts.append(ReasoningPart("", redacted=data))
        else:
            raise _invalid(where, f"'{where}.type' must be 'thinking' or 'redacted_thinking'.")
    return tuple(parts)
