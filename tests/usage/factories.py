"""Hand-built engine results, shaped as the adapters report them."""

from __future__ import annotations

from providers.adapters.base import Attempt, GenerationResult, Usage
from providers.errors import ErrorKind, ProviderError


def ok_result(model: str, usage: Usage, *, ttft: float = 0.2, latency: float = 1.0):
    return GenerationResult(
        text="hello",
        model=model,
        finish_reason="stop",
        usage=usage,
        attempts=[Attempt(1, "ok", 200, 0.0, ttft, latency, usage)],
    )


def failed_result(model: str, kind: ErrorKind, usage: Usage, *, status: int | None = None):
    return GenerationResult(
        text="partial",
        model=model,
        usage=usage,
        error=ProviderError(kind, "failed", status_code=status),
        attempts=[Attempt(1, kind.value, status, 0.0, 0.3, 2.0, usage)],
    )
