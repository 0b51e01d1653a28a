"""Budget and metering around one API call, shared by POST /api/generate and /v1.

A call is opened (its worst-case cost held, or refused and the refusal recorded),
made, then closed (every attempt metered and the hold settled; released when upstream
was never reached). `generate_for_api` does all three for a non-streamed call (and
`generation.gateway.services.agenerate_for_api` from the event loop); a stream opens and
closes around its own iteration (generation.gateway.streaming). An embeddings call
(`open_embedding_call` / `close_embedding_call`) holds its input alone: it has no output.
A call its client abandons is still metered for what went upstream: hanging up does not
dodge the bill.
"""

from __future__ import annotations

from dataclasses import replace

from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from providers import engine
from providers.adapters.base import GenerationRequest, GenerationResult
from providers.adapters.embeddings import EmbeddingRequest, EmbeddingResult
from providers.models import Provider
from usage.budgets import (
    BudgetExceeded,
    embedding_tokens_to_hold,
    output_tokens_to_hold,
    prompt_tokens_to_hold,
    release_reservation,
    reserve_budget,
    settle_reservation,
)
from usage.models import Reservation
from usage.services import record_embedding, record_generation, record_refusal

SOURCE = "api"


def open_call(
    *, user: User, provider: Provider, request: GenerationRequest, request_id: str
) -> Reservation:
    """Hold the call's worst-case cost; over budget, record the refusal and raise."""
    return _hold(
        user=user,
        provider=provider,
        model=request.model,
        max_tokens=output_tokens_to_hold(request),
        prompt_tokens=prompt_tokens_to_hold(request),
        request_id=request_id,
    )


def open_embedding_call(
    *, user: User, provider: Provider, request: EmbeddingRequest, request_id: str
) -> Reservation:
    """Hold an embeddings call's cost: its input, as there is no output."""
    return _hold(
        user=user,
        provider=provider,
        model=request.model,
        max_tokens=0,
        prompt_tokens=embedding_tokens_to_hold(request),
        request_id=request_id,
    )


def _hold(
    *,
    user: User,
    provider: Provider,
    model: str,
    max_tokens: int | None,
    prompt_tokens: int,
    request_id: str,
) -> Reservation:
    try:
        return reserve_budget(
            user=user,
            provider=provider,
            model=model,
            max_tokens=max_tokens,
            prompt_tokens=prompt_tokens,
        )
    except BudgetExceeded:
        record_refusal(
            provider=provider, user=user, source=SOURCE, model=model, request_id=request_id
        )
        raise


def close_call(
    *,
    user: User,
    provider: Provider,
    reservation: Reservation,
    result: GenerationResult | None,
    request_id: str,
) -> None:
    """Meter every attempt of `result` and settle; None (upstream never called): release."""
    if result is None:
        release_reservation(reservation=reservation)
        return
    records = record_generation(
        provider=provider, user=user, source=SOURCE, result=result, request_id=request_id
    )
    settle_reservation(reservation=reservation, records=records)


def close_embedding_call(
    *,
    user: User,
    provider: Provider,
    reservation: Reservation,
    result: EmbeddingResult | None,
    request_id: str,
) -> None:
    """`close_call` for an embeddings call."""
    if result is None:
        release_reservation(reservation=reservation)
        return
    records = record_embedding(
        provider=provider, user=user, source=SOURCE, result=result, request_id=request_id
    )
    settle_reservation(reservation=reservation, records=records)


def generate_for_api(
    *,
    user: User,
    provider: Provider,
    request: GenerationRequest,
    request_id: str,
) -> GenerationResult:
    """One metered, budgeted, non-streamed generation.

    Raises `InvalidRequest` (bad parameters) or `BudgetExceeded` before any upstream
    call; upstream failures come back in ``result.error`` with every attempt recorded.
    """
    request = engine.validate_request(provider, replace(request, cache_scope=str(user.pk)))
    reservation = open_call(user=user, provider=provider, request=request, request_id=request_id)
    tracker = engine.StreamTracker()
    result: GenerationResult | None = None
    try:
        result = async_to_sync(engine.generate)(provider, request, tracker=tracker)
        return result
    finally:
        # A client that hangs up cancels the view's task under ASGI, and asgiref cancels
        # the engine call inside it: CancelledError reaches this thread, which meters
        # every attempt made (the one cut short estimated) before letting it go on.
        close_call(
            user=user,
            provider=provider,
            reservation=reservation,
            result=result if result is not None else tracker.interrupted_result(),
            request_id=request_id,
        )
