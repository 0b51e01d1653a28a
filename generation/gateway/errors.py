"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status codes follow OpenAI's, so that the official SDK raises its matching
exception class. Decisions (see also `UPSTREAM_ERRORS`):

- a missing, wrong or revoked Switchboard token is the caller's 401;
- an upstream refusing *our stored provider key* (or the provider account's billing)
  is not the caller's fault: 502, never 401/402, so clients do not think their own
  token is wrong;
- over the user's monthly budget: 402 ``insufficient_quota``. OpenAI answers quota
  exhaustion with 429, which makes clients retry a monthly limit in a loop; 402 makes
  the SDK raise `APIStatusError` once;
- ``x-should-retry: false`` (a header the official SDKs obey) on answers that cannot
  improve by retrying, so the SDK's own retries do not hammer a dead end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.http import JsonResponse

from generation.json_api import STATUS_BY_ERROR_KIND, TOO_LARGE, BadBody
from providers.errors import ErrorKind, ProviderError
from providers.validation import InvalidRequest, NotOffered

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


@dataclass(eq=False)  # an exception: compared and hashed by identity
class GatewayError(Exception):
    status: int
    message: str  # safe to show: never a key, prompt or answer text
    type: str = INVALID_REQUEST
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None
    retryable: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        response["x-should-retry"] = "true" if self.retryable else "false"
        for name, value in self.headers.items():
            response[name] = value
        return response


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def missing_parameter(param: str) -> GatewayError:
    return bad_request(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid_type(param: str, expected: str, value: object) -> GatewayError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string"}
    names |= {list: "an array", dict: "an object"}
    return names.get(type(value), "a value of another type")


def unsupported_parameter(name: str) -> GatewayError:
    return bad_request(
        f"Switchboard does not support the parameter '{name}'.",
        param=name,
        code="unsupported_parameter",
    )


def from_bad_body(exc: BadBody) -> GatewayError:
    """The shared body reader's refusal; a body over the size limit is OpenAI's 413."""
    return GatewayError(
        413 if exc.code == TOO_LARGE else 400, exc.message, param=exc.field, code=exc.code
    )


def invalid_token() -> GatewayError:
    return GatewayError(
        401,
        "The API key is missing, wrong or revoked. Send 'Authorization: Bearer <token>' "
        "with a personal API token from Switchboard.",
        code="invalid_api_key",
    )


def model_not_found(message: str) -> GatewayError:
    return GatewayError(404, message, param="model", code="model_not_found")


def from_invalid_request(exc: InvalidRequest, params: dict[str, str]) -> GatewayError:
    """The engine's pre-call validation, naming the parameter as the client sent it."""
    if isinstance(exc, NotOffered):
        # The model exists, or might: this provider's kind cannot make the call at all.
        return bad_request(exc.message, param=exc.field, code="unsupported_value")
    if exc.field == "model":
        return model_not_found(exc.message)
    param = params.get(exc.field, exc.field)
    return bad_request(exc.message, param=param, code="invalid_value")


def over_budget(reason: str) -> GatewayError:
    return GatewayError(402, reason, type="insufficient_quota", code="insufficient_quota")


# ErrorKind -> (type, code) in OpenAI's vocabulary; the status is the one both APIs use
# (generation.json_api.STATUS_BY_ERROR_KIND).
UPSTREAM_ERRORS: dict[ErrorKind, tuple[str, str]] = {
    ErrorKind.AUTH: (SERVER_ERROR, "upstream_auth_failed"),  # our stored key
    ErrorKind.BILLING: (SERVER_ERROR, "upstream_billing"),  # the provider account
    ErrorKind.RATE_LIMIT: ("requests", "rate_limit_exceeded"),
    ErrorKind.BAD_REQUEST: (INVALID_REQUEST, "upstream_bad_request"),
    ErrorKind.OVERLOADED: (SERVER_ERROR, "upstream_overloaded"),
    ErrorKind.PROVIDER_ERROR: (SERVER_ERROR, "upstream_error"),
    ErrorKind.NETWORK: (SERVER_ERROR, "upstream_unreachable"),
    ErrorKind.TIMEOUT: (SERVER_ERROR, "upstream_timeout"),
    ErrorKind.CANCELLED: (SERVER_ERROR, "cancelled"),
    ErrorKind.CONFIGURATION: (SERVER_ERROR, "provider_not_configured"),  # no call made
    ErrorKind.UNKNOWN: (SERVER_ERROR, "upstream_unknown"),
}
# A client waiting after a 429 / 503 with no Retry-After from upstream: one second.
DEFAULT_RETRY_AFTER = 1.0


def from_provider_error(error: ProviderError) -> GatewayError:
    type_, code = UPSTREAM_ERRORS[error.kind]
    status = STATUS_BY_ERROR_KIND[error.kind]
    retry_after = None
    if error.kind in (ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED):
        retry_after = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER
    # error.message is written per kind by the engine: it never carries upstream text.
    return GatewayError(
        status,
        error.message,
        type=type_,
        code=code,
        retry_after=retry_after,
        retryable=error.retryable,
    )
