"""Budget and metering around one streamed gateway call (sync ORM work, and `aopen_call`).

Non-streamed calls go through `generation.api_services.generate_for_api`, the same
workflow POST /api/generate uses. A stream cannot: its result arrives after the
response has started, so the workflow is split in two around it here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from providers.adapters.common import prompt_chars
from usage.budgets import BudgetExceeded, release_reservation, reserve_budget, settle_reservation
from usage.services import record_generation, record_refusal

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from providers.adapters.base import GenerationRequest, GenerationResult
    from providers.models import Provider
    from usage.models import Reservation

SOURCE = "api"


def open_call(
    *, user: AbstractBaseUser, provider: Provider, request: GenerationRequest, request_id: str
) -> Reservation:
    """Hold the call's worst-case cost; over budget, record the refusal and raise."""
    try:
        return reserve_budget(
            user=user,
            provider=provider,
            model=request.model,
            max_tokens=request.max_tokens,
            prompt_chars=prompt_chars(request),
        )
    except BudgetExceeded:
        record_refusal(
            provider=provider, user=user, source=SOURCE, model=request.model, request_id=request_id
        )
        raise


def close_call(
    *,
    user: AbstractBaseUser,
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


async def aopen_call(
    *, user: AbstractBaseUser, provider: Provider, request: GenerationRequest, request_id: str
) -> Reservation:
    """`open_call` from the loop. A client that leaves meanwhile does not leave a hold
    on its budget: the reservation is released as soon as it exists."""
    task = asyncio.ensure_future(
        sync_to_async(open_call)(
            user=user, provider=provider, request=request, request_id=request_id
        )
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # BudgetExceeded: nothing was held
            await sync_to_async(release_reservation)(reservation=await task)
        raise
