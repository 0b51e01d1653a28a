"""A short-lived per-process copy of the price table, for the metering hot path.

Every metered call looked its price up twice (the budget's worst case, then the usage
record), each a query returning the kind's whole price list. Prices change rarely and
the table is small, so each process keeps the rows of a provider kind for a few seconds.

Exactness: a save or delete of a ModelPrice in this process drops the copy at once (and
again when its transaction commits); another process sees the change within
PRICE_CACHE_SECONDS. Inside a transaction the table is read directly, so rows of an
uncommitted transaction never enter the copy.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection, transaction

from usage.models import ModelPrice

PRICE_CACHE_SECONDS = 30.0

_lock = threading.Lock()
_rows: dict[str, tuple[float, tuple[ModelPrice, ...]]] = {}
_generation = 0


def prices_of_kind(provider_kind: str) -> tuple[ModelPrice, ...]:
    """All prices of a provider kind (every version). Treat the rows as read-only."""
    query = ModelPrice.objects.filter(provider_kind=provider_kind)
    if connection.in_atomic_block:
        return tuple(query)
    now = time.monotonic()
    entry = _rows.get(provider_kind)
    if entry is not None and now - entry[0] < PRICE_CACHE_SECONDS:
        return entry[1]
    generation = _generation
    rows = tuple(query)
    with _lock:
        # A price saved while we read: our rows may predate it; keep them uncached.
        if generation == _generation:
            _rows[provider_kind] = (now, rows)
    return rows


def clear() -> None:
    global _generation
    with _lock:
        _generation += 1
        _rows.clear()


def price_changed(**kwargs: Any) -> None:
    """post_save / post_delete of ModelPrice: drop the copy now and once committed."""
    clear()
    transaction.on_commit(clear)
