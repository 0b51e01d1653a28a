"""Every exception an SDK (or the HTTP layer under it) raises becomes one `ProviderError`.

The user-facing message is the kind's `ERROR_WORDS`, never copied from the upstream
body, so neither a key nor raw provider text can reach a page.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import time
from collections.abc import Mapping

import anthropic
import httpx2
import openai

from providers.errors import ERROR_WORDS, IMAGES_NOT_ACCEPTED, ErrorKind, ProviderError

STATUS_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTH,
    402: ErrorKind.BILLING,
    403: ErrorKind.AUTH,
    404: ErrorKind.BAD_REQUEST,
    408: ErrorKind.TIMEOUT,
    413: ErrorKind.BAD_REQUEST,
    422: ErrorKind.BAD_REQUEST,
    429: ErrorKind.RATE_LIMIT,
    503: ErrorKind.OVERLOADED,
    529: ErrorKind.OVERLOADED,
}

# A 400 whose message says the model takes no images at all: "image_url is only supported
# by certain models" (OpenAI), "does not support image input", "is not a multimodal
# model" (vLLM), "unknown variant `image_url`" (DeepSeek). Not any mention of an image:
# "image exceeds 5 MB maximum" is about that image, and keeps the kind's words.
_IMAGE_REFUSAL = re.compile(
    r"(?:does not|doesn't|do not|cannot) (?:support|accept|process) (?:image|vision)"
    r"|image_url is only supported|not a multimodal model|unknown variant .?image_url",
    re.IGNORECASE,
)

# Error codes that mean "out of money" whatever status they arrive with (OpenAI sends 429).
_BILLING_CODES = frozenset({"insufficient_quota", "billing_error", "billing_hard_limit_reached"})

_STATUS_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)
_TIMEOUT_ERRORS = (
    openai.APITimeoutError,
    anthropic.APITimeoutError,
    httpx2.TimeoutException,
    TimeoutError,
)
_NETWORK_ERRORS = (openai.APIConnectionError, anthropic.APIConnectionError, httpx2.TransportError)
# Errors raised from inside a stream body (OpenAI's `{"error": ...}` chunk) with no status.
_STREAM_ERRORS = (openai.APIError, anthropic.APIError, httpx2.DecodingError)


def provider_error(kind: ErrorKind, *, status_code: int | None = None) -> ProviderError:
    return ProviderError(kind, ERROR_WORDS[kind], status_code=status_code)


def map_exception(exc: BaseException) -> ProviderError:
    """The one `ProviderError` for `exc`; its message is safe to show a user."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return provider_error(ErrorKind.CANCELLED)
    if isinstance(exc, _STATUS_ERRORS):
        return _from_status(exc.status_code, exc.body, exc.response.headers)
    if isinstance(exc, _TIMEOUT_ERRORS):
        return provider_error(ErrorKind.TIMEOUT)
    if isinstance(exc, _NETWORK_ERRORS):
        return provider_error(ErrorKind.NETWORK)
    if isinstance(exc, _STREAM_ERRORS):
        return provider_error(ErrorKind.PROVIDER_ERROR)
    return provider_error(ErrorKind.UNKNOWN)


def _from_status(status: int, body: object, headers: Mapping[str, str]) -> ProviderError:
    if status < 300:
        # An error event inside a successful (200) stream: Anthropic's in-stream `error`.
        kind = ErrorKind.PROVIDER_ERROR
    elif status < 400:
        # A redirect, deliberately not followed (it would carry the key): fix the base URL.
        kind = ErrorKind.BAD_REQUEST
    elif _error_code(body) in _BILLING_CODES:
        kind = ErrorKind.BILLING
    else:
        fallback = ErrorKind.PROVIDER_ERROR if status >= 500 else ErrorKind.BAD_REQUEST
        kind = STATUS_KINDS.get(status, fallback)
    words = ERROR_WORDS[kind]
    if status == 400 and _IMAGE_REFUSAL.search(_error_message(body)):
        words = IMAGES_NOT_ACCEPTED  # our words: the upstream text only chose them
    return ProviderError(kind, words, status_code=status, retry_after=retry_after_seconds(headers))


def _error_code(body: object) -> str | None:
    """`code` or `type` of the error object in an OpenAI or Anthropic error body."""
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return code if isinstance(code, str) else None


def _error_message(body: object) -> str:
    """`message` of the error object in an OpenAI or Anthropic error body, or ""."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else ""


def _seconds(value: float) -> float | None:
    # "inf" and "nan" parse as floats: a wait they name is no wait we can honour.
    return max(value, 0.0) if math.isfinite(value) else None


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait the provider asked for: ``retry-after-ms``, else ``Retry-After`` (secs or date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return _seconds(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
