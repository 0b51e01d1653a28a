"""Tool calling in the fake, on both wire formats.

A request offering tools (with a tool_choice other than "none") is answered with calls:
of the function its tool_choice names, else of its first tools (``parallel=2`` calls two
at once, unless the request disables parallel calls), with arguments made up from each
function's parameters schema, as `structured` makes up an answer. A request whose last
turn hands back tool results is answered in text that says what it read. Requests
whose tool results answer no call are refused, as the real APIs refuse them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from providers.fake_upstream.structured import instance_json

# How many characters of a call's arguments go in one streamed fragment.
FRAGMENT_CHARS = 12


@dataclass(frozen=True)
class FakeCall:
    id: str
    name: str
    arguments: str  # JSON text

    def fragments(self) -> list[str]:
        text = self.arguments
        return [text[i : i + FRAGMENT_CHARS] for i in range(0, len(text), FRAGMENT_CHARS)]

    @property
    def tokens(self) -> int:
        return 1 + len(self.arguments) // 4


def _offered(dialect: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, parameters schema) of each tool the request offers."""
    offered = []
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if dialect == "openai" else tool
        if not isinstance(spec, dict):
            continue
        schema = spec.get("parameters" if dialect == "openai" else "input_schema")
        offered.append((str(spec.get("name", "")), schema if isinstance(schema, dict) else {}))
    return offered


def _choice(dialect: str, body: dict[str, Any]) -> tuple[str, str]:
    """("auto" | "none" | "required" | "named", the named function or "")."""
    choice = body.get("tool_choice")
    if dialect == "openai":
        if isinstance(choice, dict):
            return "named", str((choice.get("function") or {}).get("name", ""))
        return (choice if isinstance(choice, str) else "auto"), ""
    if not isinstance(choice, dict):
        return "auto", ""
    kind = choice.get("type")
    if kind == "tool":
        return "named", str(choice.get("name", ""))
    return {"any": "required", "none": "none"}.get(str(kind), "auto"), ""


def _parallel_allowed(dialect: str, body: dict[str, Any]) -> bool:
    if dialect == "openai":
        return body.get("parallel_tool_calls") is not False
    choice = body.get("tool_choice")
    return not (isinstance(choice, dict) and choice.get("disable_parallel_tool_use"))


def last_results(dialect: str, body: dict[str, Any]) -> list[str]:
    """The contents of the tool results the request's last turn hands back, if it does."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    if dialect == "openai":
        found: list[str] = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            found.insert(0, _text(message.get("content")))
        return found
    content = messages[-1].get("content") if messages else None
    if not isinstance(content, list):
        return []
    return [
        _text(block.get("content"))
        for block in content
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def planned_calls(dialect: str, body: dict[str, Any], parallel: int) -> tuple[FakeCall, ...]:
    """The calls the fake answers this request with; () for a text answer."""
    offered = _offered(dialect, body)
    choice, named = _choice(dialect, body)
    if not offered or choice == "none" or last_results(dialect, body):
        return ()
    if choice == "named":
        chosen = [tool for tool in offered if tool[0] == named][:1]
    else:
        count = max(parallel, 1) if _parallel_allowed(dialect, body) else 1
        chosen = [offered[i % len(offered)] for i in range(count)]
    prefix = "call_" if dialect == "openai" else "toolu_"
    return tuple(
        FakeCall(f"{prefix}{uuid.uuid4().hex[:24]}", name, instance_json(schema))
        for name, schema in chosen
    )


def results_answer(dialect: str, body: dict[str, Any]) -> str | None:
    """The text answer to a turn of tool results, or None when the turn holds none."""
    results = last_results(dialect, body)
    if not results:
        return None
    return "I read the tool results: " + " | ".join(results)


def refusal(dialect: str, body: dict[str, Any]) -> str | None:
    """Why the real API would refuse the request's tool results, or None: each must
    answer a call of the assistant turn just before it (by id)."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    called: set[str] = set()
    for message in messages:
        role = message.get("role")
        if dialect == "openai":
            if role == "assistant":
                called = {str(c.get("id")) for c in message.get("tool_calls") or ()}
            elif role == "tool":
                if message.get("tool_call_id") not in called:
                    return (
                        "Invalid parameter: messages with role 'tool' must be a response "
                        "to a preceeding message with 'tool_calls'."
                    )
            else:
                called = set()
            continue
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if role == "user":
            for block in blocks:
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in called:
                    return (
                        "messages: Unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{block.get('tool_use_id')}. Each `tool_result` block must have a "
                        "corresponding `tool_use` block in the previous message."
                    )
        called = (
            {str(block.get("id")) for block in blocks if block.get("type") == "tool_use"}
            if role == "assistant"
            else set()
        )
    return None
