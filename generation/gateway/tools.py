"""OpenAI's tool calling on /v1: `tools`, `tool_choice`, an assistant's `tool_calls` and
`tool` messages -> the engine's ToolSpec, ToolChoice, ToolCallPart and ToolResultPart,
each checked and named as sent (OpenAI's 400s, with ``param``)."""

from __future__ import annotations

import re
from typing import Any

from generation.gateway.errors import GatewayError, bad_request, invalid_type
from providers.adapters.base import NamedTool, ToolCallPart, ToolChoice, ToolSpec

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
CHOICES: dict[str, ToolChoice] = {"auto": "auto", "none": "none", "required": "required"}


def _invalid(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="invalid_value")


def tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid_type("tools", "an array", value)
    specs = []
    for index, tool in enumerate(value):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise invalid_type(param, "an object", tool)
        if tool.get("type") != "function":
            raise bad_request(
                f"Invalid '{param}.type': Switchboard supports only 'function' tools.",
                param=f"{param}.type",
                code="unsupported_value",
            )
        specs.append(_function(tool.get("function"), f"{param}.function"))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise _invalid("tools", "Invalid 'tools': each function needs a name of its own.")
    return tuple(specs)


def _function(value: Any, param: str) -> ToolSpec:
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    name, description = value.get("name"), value.get("description")
    parameters, strict = value.get("parameters"), value.get("strict")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _invalid(
            f"{param}.name",
            f"Invalid '{param}.name': 1 to 64 letters, digits, '_' or '-' "
            "(^[a-zA-Z0-9_-]{1,64}$).",
        )
    if description is not None and not isinstance(description, str):
        raise invalid_type(f"{param}.description", "a string", description)
    if parameters is not None and not isinstance(parameters, dict):
        raise _invalid(
            f"{param}.parameters", f"Invalid '{param}.parameters': it must be a JSON Schema object."
        )
    if parameters is not None and parameters.get("type", "object") != "object":
        raise _invalid(
            f"{param}.parameters",
            f"Invalid '{param}.parameters': the schema must be of type 'object'.",
        )
    if strict is not None and not isinstance(strict, bool):
        raise invalid_type(f"{param}.strict", "a boolean", strict)
    return ToolSpec(name, description or "", parameters, strict)


def tool_choice(value: Any, offered: tuple[ToolSpec, ...]) -> ToolChoice | None:
    if value is None:
        return None
    if not offered:
        raise _invalid(
            "tool_choice", "Invalid 'tool_choice': it is only allowed when 'tools' are given."
        )
    if isinstance(value, str):
        if value not in CHOICES:
            raise _invalid(
                "tool_choice",
                "Invalid 'tool_choice': 'auto', 'none', 'required' or a named function.",
            )
        return CHOICES[value]
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(value, dict) or value.get("type") != "function" or not isinstance(name, str):
        raise _invalid(
            "tool_choice",
            "Invalid 'tool_choice': name a function as "
            '{"type": "function", "function": {"name": ...}}.',
        )
    if name not in {spec.name for spec in offered}:
        raise _invalid(
            "tool_choice", f"Invalid 'tool_choice': no function named {name!r} is in 'tools'."
        )
    return NamedTool(name)


def parallel_tool_calls(value: Any, offered: tuple[ToolSpec, ...]) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid_type("parallel_tool_calls", "a boolean", value)
    if not offered:
        raise _invalid(
            "parallel_tool_calls",
            "Invalid 'parallel_tool_calls': it is only allowed when 'tools' are given.",
        )
    return value


def tool_calls(value: Any, param: str) -> tuple[ToolCallPart, ...]:
    """An assistant message's `tool_calls`, as the model made them."""
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    calls = []
    for index, call in enumerate(value):
        call_param = f"{param}[{index}]"
        if not isinstance(call, dict):
            raise invalid_type(call_param, "an object", call)
        if call.get("type", "function") != "function":
            raise bad_request(
                f"Invalid '{call_param}.type': Switchboard supports only 'function' calls.",
                param=f"{call_param}.type",
                code="unsupported_value",
            )
        call_id, function = call.get("id"), call.get("function")
        if not isinstance(call_id, str) or not call_id:
            raise invalid_type(f"{call_param}.id", "a non-empty string", call_id)
        if not isinstance(function, dict):
            raise invalid_type(f"{call_param}.function", "an object", function)
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            raise invalid_type(f"{call_param}.function.name", "a non-empty string", name)
        if not isinstance(arguments, str):
            raise invalid_type(f"{call_param}.function.arguments", "a string", arguments)
        calls.append(ToolCallPart(call_id, name, arguments))
    return tuple(calls)
