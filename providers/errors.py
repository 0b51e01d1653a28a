"""The provider error taxonomy: every upstream failure becomes one `ErrorKind`."""

from __future__ import annotations

from django.db import models


class ErrorKind(models.TextChoices):
    AUTH = "auth", "Authentication failed"
    BILLING = "billing", "Billing problem"
    RATE_LIMIT = "rate_limit", "Rate limited"
    BAD_REQUEST = "bad_request", "Bad request"
    OVERLOADED = "overloaded", "Provider overloaded"
    PROVIDER_ERROR = "provider_error", "Provider error"
    NETWORK = "network", "Network error"
    TIMEOUT = "timeout", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    # Found before any call went out: the provider cannot be called as configured (a
    # hosted kind with no key stored, a key this server's keyring cannot decrypt).
    CONFIGURATION = "configuration", "Provider not configured"
    UNKNOWN = "unknown", "Unknown error"


# The one text per kind that a user reads, in the chat and in the APIs' error messages.
# Written here, never copied from an upstream body, so no key or raw provider text can
# reach a page. Words a chat bubble and an API client can both act on.
ERROR_WORDS: dict[str, str] = {  # by ErrorKind (a str: a model's error_kind looks up)
    ErrorKind.AUTH: "The provider rejected the API key. Ask an administrator to update it.",
    ErrorKind.BILLING: "The provider account has a billing problem (perhaps out of credit). "
    "Ask an administrator to check it.",
    ErrorKind.RATE_LIMIT: "The provider is receiving too many requests. Wait a moment and retry.",
    ErrorKind.BAD_REQUEST: "The provider refused this request (check the model and parameters).",
    ErrorKind.OVERLOADED: "The provider is overloaded right now. Try again in a moment.",
    ErrorKind.PROVIDER_ERROR: "The provider had an internal error. Try again.",
    ErrorKind.NETWORK: "The connection to the provider failed or dropped. Try again.",
    ErrorKind.TIMEOUT: "The answer stopped before it finished. Try again.",
    ErrorKind.CANCELLED: "The answer was stopped.",
    ErrorKind.CONFIGURATION: "This provider is not set up to be called (its API key is missing "
    "or cannot be read). Ask an administrator to fix it in the admin.",
    ErrorKind.UNKNOWN: "Something unexpected went wrong while calling the provider.",
}

# A bad request that the provider said was about images: a model without vision, sent an
# image (the chat's attachments). The kind stays bad_request; these words say what to do.
IMAGES_NOT_ACCEPTED = "This model does not accept images. Try a model with vision."

RETRYABLE_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.OVERLOADED,
        ErrorKind.PROVIDER_ERROR,
        ErrorKind.NETWORK,
        ErrorKind.TIMEOUT,
    }
)


class ProviderError(Exception):
    """A failed upstream call. `message` is safe to show a user: no key, no raw body."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "message": self.message, "retryable": self.retryable}
