"""`test_connection`: a cheap real call that tells an administrator whether a provider works."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from providers.adapters.clients import run_in_own_loop
from providers.cache import models_key
from providers.errors import ProviderError
from providers.models_list import astore_models, fetch_models, store_models

if TYPE_CHECKING:
    from providers.models import Provider


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    latency_ms: int
    error_kind: str = ""  # an ErrorKind value when not ok
    message: str = ""  # safe to show: written by us, never the provider's text
    model_count: int = 0


async def atest_connection(provider: Provider) -> ConnectionCheck:
    """List the provider's models (no tokens spent); refreshes the models cache on success."""
    started = time.monotonic()
    try:
        models = await fetch_models(provider)
    except ProviderError as error:
        return _failed(started, error)
    await astore_models(models_key(provider), models)
    return _succeeded(started, models)


def test_connection(provider: Provider) -> ConnectionCheck:
    """`atest_connection` for sync code (the admin action)."""
    started = time.monotonic()
    try:
        models = run_in_own_loop(fetch_models(provider))
    except ProviderError as error:
        return _failed(started, error)
    store_models(models_key(provider), models)
    return _succeeded(started, models)


def _succeeded(started: float, models: list[str]) -> ConnectionCheck:
    message = f"Connected; the provider lists {len(models)} models."
    return ConnectionCheck(True, _ms_since(started), message=message, model_count=len(models))


def _failed(started: float, error: ProviderError) -> ConnectionCheck:
    return ConnectionCheck(False, _ms_since(started), error.kind.value, error.message)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


# Not tests, despite the name: keep pytest from collecting them where they are imported.
atest_connection.__test__ = False  # type: ignore[attr-defined]
test_connection.__test__ = False  # type: ignore[attr-defined]
