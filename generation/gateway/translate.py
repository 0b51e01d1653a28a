"""OpenAI's chat-completions request body -> the engine's `GenerationRequest`.

Every parameter is checked with OpenAI's error shape, naming it in ``param``. A
parameter Switchboard cannot honour (n > 1, logprobs, audio, ...) is
refused rather than silently dropped: an answer that ignores it would look like a
bug in the caller's code. ``null`` means "not given", as in OpenAI's API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from generation.gateway import reasoning
from generation.gateway.errors import (
    bad_request,
    invalid_type,
    missing_parameter,
    unsupported_parameter,
)
from generation.gateway.images import image_part
from generation.gateway.reasoning import REASONING_KEYS
from generation.gateway.response_format import response_format
from generation.gateway.tools import parallel_tool_calls, tool_calls, tool_choice, tools
from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

# OpenAI allows at most four stop sequences; Anthropic many more: the stricter rule wins.
MAX_STOP_SEQUENCES = 4
SUPPORTED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "user",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "response_format",
        "reasoning_effort",
        "n",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
    }
)
# Parameters accepted only at the value that changes nothing (some clients always send them).
NEUTRAL_VALUES: dict[str, object] = {
    "logprobs": False,
}
ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id"}) | REASONING_KEYS
MAX_USER_CHARS = 256
MAX_LOGIT_BIAS = 300
MAX_CHOICES = 8  # each answer is held against the budget in full


@dataclass(frozen=True)
class ChatCall:
    model: str  # as the client named it: "<provider>/<model>" or "<model>"
    request: GenerationRequest  # its model is filled in once the name is resolved
    stream: bool
    include_usage: bool
    # The engine's names for parameters -> the ones this client sent, for error messages.
    params: dict[str, str]


def parse_chat(data: Any) -> ChatCall:
    """The parsed JSON body (read by `generation.json_api.read_json_body`) -> a ChatCall."""
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    given = {name: value for name, value in data.items() if value is not None}
    for name, value in given.items():
        if name not in SUPPORTED and not _is_neutral(name, value):
            raise unsupported_parameter(name)
    model = given.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_type("model", "a non-empty string", model)
    stream = _optional(given, "stream", bool, "a boolean") or False
    include_usage = _include_usage(given, stream)
    # Passed to the provider (OpenAI's `user`, Anthropic's metadata.user_id) for its
    # abuse monitoring; never stored or logged here.
    end_user = _optional(given, "user", str, "a string") or ""
    if len(end_user) > MAX_USER_CHARS:
        raise bad_request(
            f"Invalid 'user': at most {MAX_USER_CHARS} characters.",
            param="user",
            code="invalid_value",
        )
    seed = given.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise invalid_type("seed", "an integer", seed)
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise bad_request(
            "Invalid 'seed': it must fit in 64 bits.", param="seed", code="invalid_value"
        )
    system, messages = _messages(given.get("messages"))
    offered = tools(given.get("tools"))
    return ChatCall(
        model=model.strip(),
        request=GenerationRequest(
            model="",
            messages=messages,
            system=system,
            max_tokens=_max_tokens(given),
            temperature=_number(given, "temperature", 0, 2),
            top_p=_number(given, "top_p", 0, 1),
            stop=_stop(given.get("stop")),
            seed=seed,
            presence_penalty=_number(given, "presence_penalty", -2, 2),
            frequency_penalty=_number(given, "frequency_penalty", -2, 2),
            logit_bias=_logit_bias(given.get("logit_bias")),
            end_user=end_user,
            response_format=response_format(given.get("response_format")),
            reasoning_effort=reasoning.reasoning_effort(given.get("reasoning_effort")),
            n=_choices(given.get("n")),
            tools=offered,
            tool_choice=tool_choice(given.get("tool_choice"), offered),
            parallel_tool_calls=parallel_tool_calls(given.get("parallel_tool_calls"), offered),
        ),
        stream=stream,
        include_usage=include_usage,
        params={"max_tokens": "max_completion_tokens"}
        if given.get("max_completion_tokens") is not None
        else {},
    )


def _is_neutral(name: str, value: object) -> bool:
    if name not in NEUTRAL_VALUES:
        return False
    neutral = NEUTRAL_VALUES[name]
    return isinstance(value, bool) == isinstance(neutral, bool) and value == neutral


def _optional(given: dict[str, Any], name: str, kind: type, expected: str) -> Any:
    value = given.get(name)
    if value is not None and not isinstance(value, kind):
        raise invalid_type(name, expected, value)
    return value


def _include_usage(given: dict[str, Any], stream: bool) -> bool:
    options = _optional(given, "stream_options", dict, "an object")
    if options is None:
        return False
    if not stream:
        raise bad_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    unknown = sorted(set(options) - {"include_usage"})
    if unknown:
        param = f"stream_options.{unknown[0]}"
        raise bad_request(
            f"Switchboard does not support '{param}'.", param=param, code="unsupported_parameter"
        )
    value = options.get("include_usage")
    if value is not None and not isinstance(value, bool):
        raise invalid_type("stream_options.include_usage", "a boolean", value)
    return bool(value)


def _messages(value: Any) -> tuple[str, tuple[ChatMessage, ...]]:
    """The system prompt (every system/developer message, in order) and the turns."""
    if value is None:
        raise missing_parameter("messages")
    if not isinstance(value, list):
        raise invalid_type("messages", "an array", value)
    if not value:
        raise bad_request(
            "'messages' must contain at least one message.", param="messages", code="empty_array"
        )
    system: list[str] = []
    turns: list[ChatMessage] = []
    called: set[str] = set()  # the ids of the tool calls made so far
    for index, item in enumerate(value):
        param = f"messages[{index}]"
        if not isinstance(item, dict):
            raise invalid_type(param, "an object", item)
        unknown = sorted(name for name in set(item) - MESSAGE_KEYS if item[name] is not None)
        if unknown:
            raise bad_request(
                f"Switchboard does not support '{param}.{unknown[0]}'.",
                param=f"{param}.{unknown[0]}",
                code="unsupported_parameter",
            )
        raw_role = item.get("role")
        if raw_role == "tool":
            turns.append(_tool_result(item, param, called))
            continue
        role = ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise bad_request(
                f"Invalid value for '{param}.role': supported roles are "
                "'system', 'developer', 'user', 'assistant' and 'tool'.",
                param=f"{param}.role",
                code="invalid_value",
            )
        for name in ("tool_calls", "tool_call_id"):
            allowed = role == "assistant" if name == "tool_calls" else False
            if item.get(name) is not None and not allowed:
                raise bad_request(
                    f"Switchboard does not support '{param}.{name}' on a {raw_role} message.",
                    param=f"{param}.{name}",
                    code="unsupported_parameter",
                )
        calls: tuple[ToolCallPart, ...] = ()
        if item.get("tool_calls") is not None:
            calls = tool_calls(item["tool_calls"], f"{param}.tool_calls")
            called.update(call.id for call in calls)
        content = item.get("content")
        # Images only in a user's message: OpenAI takes them nowhere else. An assistant's
        # content may be null when it made tool calls.
        parts: tuple[Part, ...] = (
            ()
            if calls and content is None
            else _content(content, f"{param}.content", images=role == "user")
        )
        if role == "assistant":
            parts = (*reasoning.sent_back(item, param), *parts)
        elif any(item.get(key) is not None for key in REASONING_KEYS):
            key = next(key for key in sorted(REASONING_KEYS) if item.get(key) is not None)
            raise unsupported_parameter(f"{param}.{key}")
        if calls:
            turns.append(ChatMessage("assistant", (*parts, *calls)))
        elif role == "system":
            system.append(ChatMessage("user", parts).text)
        else:
            turns.append(ChatMessage(role, parts))
    images = sum(len(turn.images) for turn in turns)
    limit = settings.SWITCHBOARD["MAX_API_IMAGES"]
    if images > limit:
        raise bad_request(
            f"Too many images: {images} in one request, at most {limit}.",
            param="messages",
            code="invalid_value",
        )
    return "\n\n".join(system), tuple(turns)


def _tool_result(item: dict[str, Any], param: str, called: set[str]) -> ChatMessage:
    """A `tool` message: what a function returned, for a call an assistant made before."""
    call_id = item.get("tool_call_id")
    if call_id is None:
        raise missing_parameter(f"{param}.tool_call_id")
    if not isinstance(call_id, str):
        raise invalid_type(f"{param}.tool_call_id", "a string", call_id)
    if call_id not in called:
        raise bad_request(
            f"Invalid parameter: '{param}' with role 'tool' must answer a tool call of an "
            f"earlier assistant message; no call has the id {call_id!r}.",
            param=f"{param}.tool_call_id",
            code="invalid_value",
        )
    if item.get("tool_calls") is not None:
        raise bad_request(
            f"Switchboard does not support '{param}.tool_calls' on a tool message.",
            param=f"{param}.tool_calls",
            code="unsupported_parameter",
        )
    text = ChatMessage("user", _content(item.get("content"), f"{param}.content", images=False))
    return ChatMessage("user", (ToolResultPart(call_id, text.text),))


def _content(value: Any, param: str, *, images: bool) -> tuple[Part, ...]:
    """A string, or OpenAI's list of content parts: text, and `image_url` where allowed."""
    if isinstance(value, str):
        return (TextPart(value),)
    if value is None:
        raise missing_parameter(param)
    if not isinstance(value, list):
        raise invalid_type(param, "a string or an array of content parts", value)
    parts: list[Part] = []
    for index, part in enumerate(value):
        part_param = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url" and images:
            parts.append(image_part(part.get("image_url"), f"{part_param}.image_url"))
            continue
        if kind != "text":
            supported = "text and image_url" if images else "text"
            raise bad_request(
                f"Switchboard supports only {supported} content parts here ('{part_param}').",
                param=part_param,
                code="unsupported_value",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid_type(f"{part_param}.text", "a string", text)
        parts.append(TextPart(text))
    return tuple(parts)


def _max_tokens(given: dict[str, Any]) -> int | None:
    # max_completion_tokens is OpenAI's current name; max_tokens the older one.
    for name in ("max_completion_tokens", "max_tokens"):
        value = given.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(name, "an integer", value)
        if value < 1:
            raise bad_request(
                f"Invalid '{name}': it must be at least 1.", param=name, code="invalid_value"
            )
        return value
    return None


def _number(given: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = given.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(name, "a decimal", value)
    if not low <= value <= high:
        raise bad_request(
            f"Invalid '{name}': it must be between {low:g} and {high:g}.",
            param=name,
            code="invalid_value",
        )
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    sequences = [value] if isinstance(value, str) else value
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise invalid_type("stop", "a string or an array of strings", value)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise bad_request(
            f"Invalid 'stop': at most {MAX_STOP_SEQUENCES} sequences.",
            param="stop",
            code="invalid_value",
        )
    return tuple(s for s in sequences if s)


def _logit_bias(value: Any) -> tuple[tuple[str, float], ...]:
    """OpenAI's map of token ids (as strings) to a bias from -100 to 100."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise invalid_type("logit_bias", "an object", value)
    if len(value) > MAX_LOGIT_BIAS:
        raise bad_request(
            f"Invalid 'logit_bias': at most {MAX_LOGIT_BIAS} tokens (OpenAI's limit).",
            param="logit_bias",
            code="invalid_value",
        )
    pairs = []
    for token, bias in value.items():
        if not token.isdigit():
            raise bad_request(
                f"Invalid 'logit_bias': {token!r} is not a token id.",
                param="logit_bias",
                code="invalid_value",
            )
        if isinstance(bias, bool) or not isinstance(bias, int | float) or abs(bias) > 100:
            raise bad_request(
                f"Invalid 'logit_bias': the bias of token {token} must be between -100 and 100.",
                param="logit_bias",
                code="invalid_value",
            )
        pairs.append((token, float(bias)))
    return tuple(pairs)


def _choices(value: Any) -> int | None:
    """`n`: None for one answer (the default, and 1 given)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type("n", "an integer", value)
    if not 1 <= value <= MAX_CHOICES:
        raise bad_request(
            f"Invalid 'n': it must be between 1 and {MAX_CHOICES}.", param="n", code="invalid_value"
        )
    return value if value > 1 else None
