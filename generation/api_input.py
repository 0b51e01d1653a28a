"""The parsed JSON body of POST /api/generate -> a GenerationRequest, with named errors.

The body was read, parsed and its text checked by `generation.json_api.read_json_body`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from providers.adapters.base import ChatMessage, GenerationRequest

ROLES = ("user", "assistant")


class ApiInputError(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ApiInput:
    provider_id: uuid.UUID | None  # None: `model` names an alias (routing)
    request: GenerationRequest  # model "" means the provider's default
    prompt_field: str  # "prompt" or "messages": what the caller sent, for error messages


def parse_generate_body(data: Any) -> ApiInput:
    if not isinstance(data, dict):
        raise ApiInputError("The body must be a JSON object.")
    unknown = set(data) - {
        "provider_id",
        "prompt",
        "messages",
        "model",
        "max_tokens",
        "temperature",
        "system",
    }
    if unknown:
        raise ApiInputError(f"Unknown field {sorted(unknown)[0]!r}.", field=sorted(unknown)[0])
    return ApiInput(
        provider_id=_provider_id(data.get("provider_id"), model=data.get("model")),
        request=GenerationRequest(
            model=_optional_str(data, "model"),
            messages=_messages(data),
            system=_optional_str(data, "system"),
            max_tokens=_optional_int(data, "max_tokens"),
            temperature=_optional_number(data, "temperature"),
        ),
        prompt_field="prompt" if "prompt" in data else "messages",
    )


def _provider_id(value: Any, *, model: Any) -> uuid.UUID | None:
    if value is None:
        if isinstance(model, str) and model:
            return None  # the model names an alias (the view looks it up)
        raise ApiInputError(
            "provider_id is required, unless model names an alias.", field="provider_id"
        )
    if not isinstance(value, str):
        raise ApiInputError("provider_id must be a string (a UUID).", field="provider_id")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiInputError("provider_id is not a valid UUID.", field="provider_id") from None


def _messages(data: dict[str, Any]) -> tuple[ChatMessage, ...]:
    prompt, messages = data.get("prompt"), data.get("messages")
    if (prompt is None) == (messages is None):
        raise ApiInputError("Give either prompt or messages (not both).", field="prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise ApiInputError("prompt must be a string.", field="prompt")
        return (ChatMessage.of_text("user", prompt),)
    if not isinstance(messages, list) or not messages:
        raise ApiInputError("messages must be a non-empty list.", field="messages")
    parsed = []
    for index, item in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(item, dict):
            raise ApiInputError(f"{field} must be an object.", field=field)
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise ApiInputError(f"{field}.role must be 'user' or 'assistant'.", field=field)
        if not isinstance(content, str):
            raise ApiInputError(f"{field}.content must be a string.", field=field)
        parsed.append(ChatMessage.of_text(role, content))
    return tuple(parsed)


def _optional_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiInputError(f"{name} must be a string.", field=name)
    return value


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiInputError(f"{name} must be an integer.", field=name)
    return value


def _optional_number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiInputError(f"{name} must be a number.", field=name)
    return float(value)
