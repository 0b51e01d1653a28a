"""Structured output in the fake: an answer that is JSON, and valid against the schema
the request gave (OpenAI's `response_format`, Anthropic's `output_config.format`), made
up from the schema the way a model fills one in, so clients can parse it."""

from __future__ import annotations

import json
from typing import Any

# How many characters go in one token of a JSON answer.
_TOKEN_CHARS = 8


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema an answer must follow, {} for "any JSON object", None for free text."""
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_object":
            return {}
        if response_format.get("type") == "json_schema":
            return dict((response_format.get("json_schema") or {}).get("schema") or {})
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("format"), dict):
        return dict(output_config["format"].get("schema") or {})
    return None


def json_tokens(schema: dict[str, Any]) -> list[str]:
    """An instance of `schema` as JSON text, cut into tokens."""
    text = instance_json(schema)
    return [text[i : i + _TOKEN_CHARS] for i in range(0, len(text), _TOKEN_CHARS)]


def instance_json(schema: dict[str, Any]) -> str:
    """An instance of `schema` (an object when it says nothing) as JSON text."""
    return json.dumps(_instance(schema or {"type": "object"}, schema or {}))


def _instance(
    schema: dict[str, Any], root: dict[str, Any], expanding: frozenset[str] = frozenset()
) -> Any:
    if "$ref" in schema:  # "#/$defs/Name", as pydantic writes nested models
        ref = str(schema["$ref"])
        if ref in expanding:
            # A recursive schema (a tree's node within a node): stop with an empty
            # object, as a model stops nesting, rather than recursing until a crash.
            return {}
        target: Any = root
        for key in ref.lstrip("#/").split("/"):
            target = target.get(key, {})
        return _instance(target, root, expanding | {ref})
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for combined in ("anyOf", "oneOf", "allOf"):
        if schema.get(combined):
            return _instance(schema[combined][0], root, expanding)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: _instance(sub, root, expanding) for name, sub in properties.items()}
    if kind == "array":
        return [_instance(schema.get("items") or {"type": "string"}, root, expanding)]
    return {"string": "switchboard", "integer": 7, "number": 1.5, "boolean": True}.get(kind)
