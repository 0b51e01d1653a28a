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
from routing.engine import RoutedTracker, generate_routed
from routing.plans import Target
from usage.budgets import (
    BudgetExceeded,
    costliest,
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


def open_routed_call(
    *, user: User, targets: list[Target], request: GenerationRequest, request_id: str, alias: str
) -> Reservation:
    """`open_call` for a call routed through `alias`: the hold covers the costliest target
    the call may reach."""
    max_tokens, prompt_tokens = output_tokens_to_hold(request), prompt_tokens_to_hold(request)
    provider, model = costliest(
        [(target.provider, target.model) for target in targets],
        max_tokens=max_tokens,
        prompt_tokens=prompt_tokens,
    )
    return _hold(
        user=user,
        provider=provider,
        model=model,
        max_tokens=max_tokens,
        prompt_tokens=prompt_tokens,
        request_id=request_id,
        alias=alias,
    )


def _hold(
    *,
    user: User,
    provider: Provider,
    model: str,
    max_tokens: int | None,
    prompt_tokens: int,
    request_id: str,
    alias: str = "",
) -> Reservation:
    try:
        return reserve_budget(
            user=user,
            provider=provider,
            model=model,
            max_tokens=max_tokens,
            prompt_tokens=prompt_tokens,
        )
    except BudgetExceeded as exc:
        record_refusal(
            provider=provider,
            user=user,
            source=SOURCE,
            model=model,
            request_id=request_id,
            alias=alias,
            scope=exc.scope,
        )
        raise


def close_call(
    *,
    user: User,
    provider: Provider,
    reservation: Reservation,
    result: GenerationResult | None,
    request_id: str,
    alias: str = "",
) -> None:
    """Meter every attempt of `result` and settle; None (upstream never called): release.
    A routed call's attempts name their own targets; `provider` is the one that answered."""
    if result is None:
        release_reservation(reservation=reservation)
        return
    records = record_generation(
        provider=provider,
        user=user,
        source=SOURCE,
        result=result,
        request_id=request_id,
        alias=alias,
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


def generate_routed_for_api(
    *,
    user: User,
    alias: str,
    targets: list[Target],
    request: GenerationRequest,
    request_id: str,
) -> tuple[GenerationResult, Target]:
    """`generate_for_api` through an alias: the result and the target that answered.

    The request is checked against the first target of the plan (`InvalidRequest`), the
    hold covers the costliest target, and each attempt is metered with its own target.
    """
    first = targets[0]
    request = replace(request, model=first.model, cache_scope=str(user.pk))
    request = engine.validate_request(first.provider, request)
    reservation = open_routed_call(
        user=user, targets=targets, request=request, request_id=request_id, alias=alias
    )
    tracker = RoutedTracker()
    result: GenerationResult | None = None
    try:
        result = async_to_sync(generate_routed)(targets, request, tracker=tracker)
        return result, tracker.target or first
    finally:
        # As in generate_for_api: a cancelled call is metered for every attempt made.
        close_call(
            user=user,
            provider=(tracker.target or first).provider,
            reservation=reservation,
            result=result if result is not None else tracker.interrupted_result(),
            request_id=request_id,
            alias=alias,
        )
