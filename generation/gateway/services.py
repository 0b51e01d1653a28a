"""`aopen_call`: opening an API call (generation.api_services) from the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async

from generation.api_services import open_call
from usage.budgets import release_reservation

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from providers.adapters.base import GenerationRequest
    from providers.models import Provider
    from usage.models import Reservation


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
