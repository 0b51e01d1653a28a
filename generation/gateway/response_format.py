"""OpenAI's `response_format` -> the engine's ResponseFormat, checked and named as sent."""

from __future__ import annotations

import re
from typing import Any

from generation.gateway.errors import GatewayError, bad_request
from providers.adapters.base import ResponseFormat

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
PARAM = "response_format"


def _invalid(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="invalid_value")


def response_format(value: Any) -> ResponseFormat | None:
    """None for free text (absent, or `{"type": "text"}`)."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind != "json_schema":
        raise _invalid(
            f"{PARAM}.type",
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
        )
    spec = value.get("json_schema")
    param = f"{PARAM}.json_schema"
    if not isinstance(spec, dict):
        raise _invalid(param, f"'{param}' must be an object with a 'name' and a 'schema'.")
    name, schema, strict = spec.get("name"), spec.get("schema"), spec.get("strict")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _invalid(
            f"{param}.name", f"'{param}.name' must be 1 to 64 letters, digits, '_' or '-'."
        )
    if not isinstance(schema, dict):
        raise _invalid(f"{param}.schema", f"'{param}.schema' must be a JSON Schema object.")
    if strict is not None and not isinstance(strict, bool):
        raise _invalid(f"{param}.strict", f"'{param}.strict' must be a boolean.")
    return ResponseFormat("json_schema", name=name, schema=schema, strict=bool(strict))
