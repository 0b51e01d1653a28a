"""OpenAI's embeddings request body -> the engine's `EmbeddingRequest`, and its vectors ->
OpenAI's ``list`` of ``embedding`` objects.

Checked as `translate` checks a chat body: every parameter in OpenAI's error shape,
named in ``param``; an unknown one refused rather than ignored; ``null`` is "not given".
Limits (how many inputs, how long) are the engine's, so that they hold for every caller.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from generation.gateway.errors import (
    GatewayError,
    bad_request,
    invalid_type,
    missing_parameter,
    unsupported_parameter,
)
from providers.adapters.embeddings import EmbeddingRequest, EmbeddingResult, TokenIds, floats

# Far above any model's vectors (OpenAI's largest have 3,072), far below what overflows.
MAX_DIMENSIONS = 65_536
SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
Encoding = Literal["float", "base64"]
ENCODINGS: dict[str, Encoding] = {"float": "float", "base64": "base64"}
INPUT_TYPES = "a string, an array of strings, or an array of tokens or of token arrays"


@dataclass(frozen=True)
class EmbeddingCall:
    model: str  # as the client named it: "<provider>/<model>" or "<model>"
    request: EmbeddingRequest  # its model is filled in once the name is resolved
    encoding_format: Encoding


def parse_embeddings(data: Any) -> EmbeddingCall:
    """The parsed JSON body (read by `generation.json_api.read_json_body`) -> a call."""
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    given = {name: value for name, value in data.items() if value is not None}
    for name in given:
        if name not in SUPPORTED:
            raise unsupported_parameter(name)
    model = given.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid_type("model", "a non-empty string", model)
    user = given.get("user")  # accepted as OpenAI does; never stored, logged or sent on
    if user is not None and not isinstance(user, str):
        raise invalid_type("user", "a string", user)
    return EmbeddingCall(
        model=model.strip(),
        request=EmbeddingRequest(
            model="", inputs=_inputs(given.get("input")), dimensions=_dimensions(given)
        ),
        encoding_format=_encoding(given),
    )


def _inputs(value: Any) -> tuple[str, ...] | tuple[TokenIds, ...]:
    if value is None:
        raise missing_parameter("input")
    if isinstance(value, str):
        return (_text(value, "input"),)
    if not isinstance(value, list):
        raise invalid_type("input", INPUT_TYPES, value)
    if not value:
        raise bad_request(
            "'input' must contain at least one item.", param="input", code="empty_array"
        )
    first = value[0]
    if isinstance(first, str):
        return tuple(_text(item, f"input[{i}]") for i, item in enumerate(value))
    if isinstance(first, list):
        return tuple(_tokens(item, f"input[{i}]") for i, item in enumerate(value))
    if isinstance(first, int) and not isinstance(first, bool):
        return (_tokens(value, "input"),)  # one token array
    raise invalid_type("input[0]", "a string, a token or an array of tokens", first)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(param, "a string (every input of one kind)", value)
    if not value:
        raise bad_request(
            f"'{param}' is an empty string: there is nothing to embed.",
            param=param,
            code="invalid_value",
        )
    return value


def _tokens(value: Any, param: str) -> TokenIds:
    if not isinstance(value, list):
        raise invalid_type(param, "an array of tokens (every input of one kind)", value)
    if not value:
        raise bad_request(
            f"'{param}' is an empty array of tokens: there is nothing to embed.",
            param=param,
            code="invalid_value",
        )
    for index, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, int) or token < 0:
            where = f"{param}[{index}]"
            raise _bad_token(where, token)
    return tuple(value)


def _bad_token(param: str, token: object) -> GatewayError:
    if isinstance(token, int) and not isinstance(token, bool):
        return bad_request(
            f"Invalid '{param}': a token is a non-negative integer.",
            param=param,
            code="invalid_value",
        )
    return invalid_type(param, "an integer token", token)


def _dimensions(given: dict[str, Any]) -> int | None:
    value = given.get("dimensions")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type("dimensions", "an integer", value)
    if not 1 <= value <= MAX_DIMENSIONS:
        raise bad_request(
            f"Invalid 'dimensions': it must be between 1 and {MAX_DIMENSIONS}.",
            param="dimensions",
            code="invalid_value",
        )
    return value


def _encoding(given: dict[str, Any]) -> Encoding:
    value = given.get("encoding_format", "float")
    if not isinstance(value, str):
        raise invalid_type("encoding_format", "a string", value)
    if value not in ENCODINGS:
        raise bad_request(
            "Invalid 'encoding_format': supported values are 'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    return ENCODINGS[value]


def embeddings_body(call: EmbeddingCall, result: EmbeddingResult) -> dict[str, Any]:
    """OpenAI's answer: float vectors, or base64 of their little-endian float32 bytes."""
    render = _base64 if call.encoding_format == "base64" else floats
    tokens = result.usage.input_tokens
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": render(vector)}
            for index, vector in enumerate(result.vectors)
        ],
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _base64(vector: bytes) -> str:
    return base64.b64encode(vector).decode("ascii")
