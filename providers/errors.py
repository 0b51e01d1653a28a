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
