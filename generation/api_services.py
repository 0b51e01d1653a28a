"""The workflow behind POST /api/generate: validate, reserve budget, call, meter, settle."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser

from providers import engine
from providers.adapters.base import GenerationRequest, GenerationResult
from providers.models import Provider
from usage.budgets import BudgetExceeded, release_reservation, reserve_budget, settle_reservation
from usage.services import record_generation, record_refusal


def generate_for_api(
    *,
    user: AbstractBaseUser,
    provider: Provider,
    request: GenerationRequest,
    request_id: str,
) -> GenerationResult:
    """One metered, budgeted generation.

    Raises `InvalidRequest` (bad parameters) or `BudgetExceeded` before any upstream
    call; upstream failures come back in ``result.error`` with every attempt recorded.
    """
    request = engine.validate_request(provider, request)
    try:
        reservation = reserve_budget(
            user=user,
            provider=provider,
            model=request.model,
            max_tokens=request.max_tokens,
            prompt_chars=sum(len(m.content) for m in request.messages) + len(request.system),
        )
    except BudgetExceeded:
        record_refusal(
            provider=provider, user=user, source="api", model=request.model, request_id=request_id
        )
        raise
    try:
        result = async_to_sync(engine.generate)(provider, request)
    except BaseException:
        release_reservation(reservation=reservation)
        raise
    records = record_generation(
        provider=provider, user=user, source="api", result=result, request_id=request_id
    )
    settle_reservation(reservation=reservation, records=records)
    return result
