"""API calls (generation.api_services) from the event loop: `aopen_call` opens one,
`agenerate_for_api` makes a whole non-streamed one without holding a thread, and
`aembed_for_api` an embeddings call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from generation.api_services import (
    close_call,
    close_embedding_call,
    open_call,
    open_embedding_call,
    open_routed_call,
)
from providers import engine
from routing.engine import RoutedTracker, generate_routed
from usage.budgets import release_reservation

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from providers.adapters.base import GenerationRequest, GenerationResult
    from providers.adapters.embeddings import EmbeddingRequest, EmbeddingResult
    from providers.models import Provider
    from routing.plans import Target
    from usage.models import Reservation


async def aopen_call(
    *, user: User, provider: Provider, request: GenerationRequest, request_id: str
) -> Reservation:
    """`open_call` from the loop. A client that leaves meanwhile does not leave a hold
    on its budget: the reservation is released as soon as it exists."""
    return await _hold(
        sync_to_async(open_call)(
            user=user, provider=provider, request=request, request_id=request_id
        )
    )


async def aopen_routed_call(
    *, user: User, targets: list[Target], request: GenerationRequest, request_id: str, alias: str
) -> Reservation:
    """`open_routed_call` from the loop, released like `aopen_call`'s."""
    return await _hold(
        sync_to_async(open_routed_call)(
            user=user, targets=targets, request=request, request_id=request_id, alias=alias
        )
    )


async def _hold(opening: Awaitable[Reservation]) -> Reservation:
    task = asyncio.ensure_future(opening)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # BudgetExceeded: nothing was held
            await sync_to_async(release_reservation)(reservation=await task)
        raise


async def agenerate_for_api(
    *, user: User, provider: Provider, request: GenerationRequest, request_id: str
) -> GenerationResult:
    """`generate_for_api` for a request already validated, from the loop.

    A client that hangs up cancels this task: the upstream call stops at once, and every
    attempt made is metered (the one cut short estimated) and the hold settled, like a
    stream closed early.
    """
    reservation = await aopen_call(
        user=user, provider=provider, request=request, request_id=request_id
    )
    tracker = engine.StreamTracker()
    result: GenerationResult | None = None
    try:
        result = await engine.generate(provider, request, tracker=tracker)
        return result
    finally:
        meter = sync_to_async(close_call)(
            user=user,
            provider=provider,
            reservation=reservation,
            result=result if result is not None else tracker.interrupted_result(),
            request_id=request_id,
        )
        # Shielded: the task may be cancelled again (server shutdown); the write must land.
        await asyncio.shield(meter)


async def agenerate_routed_for_api(
    *,
    user: User,
    alias: str,
    targets: list[Target],
    request: GenerationRequest,
    request_id: str,
) -> tuple[GenerationResult, Target]:
    """`agenerate_for_api` through an alias (a request already validated against its
    first target): the result and the target that answered."""
    reservation = await aopen_routed_call(
        user=user, targets=targets, request=request, request_id=request_id, alias=alias
    )
    tracker = RoutedTracker()
    result: GenerationResult | None = None
    try:
        result = await generate_routed(targets, request, tracker=tracker)
        return result, tracker.target or targets[0]
    finally:
        meter = sync_to_async(close_call)(
            user=user,
            provider=(tracker.target or targets[0]).provider,
            reservation=reservation,
            result=result if result is not None else tracker.interrupted_result(),
            request_id=request_id,
            alias=alias,
        )
        await asyncio.shield(meter)  # as above: the write must land


async def aembed_for_api(
    *, user: User, provider: Provider, request: EmbeddingRequest, request_id: str
) -> EmbeddingResult:
    """An embeddings call already validated, budgeted and metered like `agenerate_for_api`
    (a client that hangs up stops it, and what went upstream is still metered)."""
    reservation = await _hold(
        sync_to_async(open_embedding_call)(
            user=user, provider=provider, request=request, request_id=request_id
        )
    )
    tracker = engine.EmbeddingTracker()
    result: EmbeddingResult | None = None
    try:
        result = await engine.embed(provider, request, tracker=tracker)
        return result
    finally:
        meter = sync_to_async(close_embedding_call)(
            user=user,
            provider=provider,
            reservation=reservation,
            result=result if result is not None else tracker.interrupted_result(),
            request_id=request_id,
        )
        await asyncio.shield(meter)  # as above: the write must land
