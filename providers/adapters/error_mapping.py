"""Every exception an SDK (or the HTTP layer under it) raises becomes one `ProviderError`.

The user-facing message is written here per kind, never copied from the upstream body,
so neither a key nor raw provider text can reach a page.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Mapping

import anthropic
import httpx2
import openai

from providers.errors import ErrorKind, ProviderError

SAFE_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.AUTH: "The provider rejected the API key. Ask an administrator to update it.",
    ErrorKind.BILLING: "The provider account has a billing problem (quota or credit exhausted).",
    ErrorKind.RATE_LIMIT: "The provider is rate limiting requests. Try again shortly.",
    ErrorKind.BAD_REQUEST: "The provider rejected the request (check the model and parameters).",
    ErrorKind.OVERLOADED: "The provider is overloaded right now. Try again shortly.",
    ErrorKind.PROVIDER_ERROR: "The provider had an internal error.",
    ErrorKind.NETWORK: "Could not reach the provider, or the connection was dropped.",
    ErrorKind.TIMEOUT: "The provider took too long to answer.",
    ErrorKind.CANCELLED: "The generation was cancelled.",
    ErrorKind.CONFIGURATION: "The provider is not set up to be called: its API key is missing "
    "or cannot be decrypted. Ask an administrator to fix it in the admin.",
    ErrorKind.UNKNOWN: "Something unexpected went wrong while calling the provider.",
}

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
    return ProviderError(kind, SAFE_MESSAGES[kind], status_code=status_code)


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
    return ProviderError(
        kind, SAFE_MESSAGES[kind], status_code=status, retry_after=retry_after_seconds(headers)
    )


def _error_code(body: object) -> str | None:
    """`code` or `type` of the error object in an OpenAI or Anthropic error body."""
    if not isinstance(body, dict):
        return None
    error = body.get("error", body)
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return code if isinstance(code, str) else None


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
