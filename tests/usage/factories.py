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


def make_record(provider, model, at, **fields):
    """A UsageRecord at an exact time (the services stamp `now`; reports need history)."""
    from usage.models import UsageRecord

    fields.setdefault("source", "chat")
    fields.setdefault("outcome", "ok")
    fields["total_tokens"] = fields.get("input_tokens", 0) + fields.get("output_tokens", 0)
    return UsageRecord.objects.create(provider=provider, model=model, created_at=at, **fields)
