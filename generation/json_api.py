"""What the two JSON APIs (POST /api/generate and the OpenAI-compatible /v1) share.

- `read_json_body`: the request's body, size-limited, decoded as UTF-8 and parsed (a
  body nested too deeply is refused, not a crash), with its text checked once, here,
  so that no later step meets a string it cannot send (a lone surrogate);
- `STATUS_BY_ERROR_KIND`: the HTTP status of each upstream failure kind.

Each API turns a `BadBody` into its own error shape.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from providers.errors import ErrorKind
from providers.validation import encodable

# Upstream failures are 5xx unless the caller can act on them.
STATUS_BY_ERROR_KIND: dict[ErrorKind, int] = {
    ErrorKind.AUTH: 502,  # our stored key is wrong: not the caller's fault
    ErrorKind.BILLING: 502,  # the provider account's, not the caller's
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.PROVIDER_ERROR: 502,
    ErrorKind.NETWORK: 502,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.CANCELLED: 502,
    ErrorKind.CONFIGURATION: 500,  # our provider setup: not the caller's fault, nor upstream's
    ErrorKind.UNKNOWN: 502,
}

TOO_LARGE = "request_too_large"
INVALID_JSON = "invalid_json"
UNENCODABLE = "invalid_value"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BadBody(Exception):
    """A body that cannot be used: too large, not JSON, or text that cannot be encoded."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # TOO_LARGE, INVALID_JSON or UNENCODABLE
        self.field = field  # where in the body, as "messages[0].content"


def read_json_body(request: HttpRequest) -> Any:
    """The parsed JSON body (any JSON value: the caller checks its shape), or BadBody."""
    text = _decode(_read(request))
    data = _parse(text)
    # Strict UTF-8 carries no lone surrogate, so only a \uD800-\uDFFF escape can make
    # one (a pair, such as an emoji escaped, is fine). Cheap checks first: the walk that
    # names the place runs only for a body that has one.
    if _SURROGATE_ESCAPE.search(text) and not _encodes(data):
        where = unencodable_path(data)
        if where is not None:
            raise BadBody(
                f"'{where or 'the body'}' holds text that cannot be encoded as UTF-8 (a lone "
                "surrogate such as \\ud800): it cannot be sent to a provider.",
                code=UNENCODABLE,
                field=where or None,
            )
    return data


def _read(request: HttpRequest) -> bytes:
    limit = settings.SWITCHBOARD["MAX_API_BODY_BYTES"]
    too_large = BadBody(f"The request body is larger than {limit} bytes.", code=TOO_LARGE)
    # The declared length first: a body over the limit is refused before it is read.
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        raise too_large
    # Read as a stream, one byte past the limit: `request.body` would apply Django's
    # DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, sized for forms) instead of ours.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def _decode(body: bytes) -> str:
    # JSON between systems is UTF-8 (RFC 8259), decoded strictly here: json.loads on bytes
    # would also guess UTF-16/32 and let encoded surrogates through.
    try:
        return body.decode("utf-8-sig")  # a leading BOM is tolerated, as the RFC allows
    except UnicodeDecodeError as exc:
        raise BadBody(
            f"The body is not valid UTF-8 (byte {exc.start}): send JSON encoded in UTF-8.",
            code=INVALID_JSON,
        ) from None


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        # json's scanner recurses once per nesting level: "[[[[..." a hundred thousand
        # deep ends it cleanly with RecursionError, which would otherwise be a 500.
        raise BadBody(
            "The JSON body is nested too deeply to be parsed.", code=INVALID_JSON
        ) from None
    except ValueError as exc:
        raise BadBody(f"The body is not valid JSON: {exc}.", code=INVALID_JSON) from None


def _encodes(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    except RecursionError:  # nested near the parser's limit: the walk decides
        return False
    return True


def unencodable_path(data: Any) -> str | None:
    """Where the first unencodable string of a parsed JSON value is, as
    ``messages[0].content`` ("" for the value itself), or None when all of it encodes.

    A bad key counts against the object holding it. Walked without recursion (the value
    may be nested almost as deeply as the parser allows), in document order, and each
    path is only spelled out for the string found.
    """
    # (value, trail): a trail is (parent trail, key or index), None at the top.
    pending: list[tuple[Any, Any]] = [(data, None)]
    while pending:
        value, trail = pending.pop()
        if isinstance(value, str):
            if not encodable(value):
                return _spell(trail)
        elif isinstance(value, dict):
            if not all(encodable(key) for key in value):
                return _spell(trail)
            children = [(item, (trail, key)) for key, item in value.items() if _walkable(item)]
            pending.extend(reversed(children))
        elif isinstance(value, list):
            children = [(item, (trail, i)) for i, item in enumerate(value) if _walkable(item)]
            pending.extend(reversed(children))
    return None


def _walkable(value: Any) -> bool:
    return isinstance(value, str | dict | list)


def _spell(trail: Any) -> str:
    steps: list[str | int] = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    path = ""
    for step in reversed(steps):
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path += f".{step}" if path else step
    return path
