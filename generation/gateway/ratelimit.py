"""Per-token requests-per-minute limit: a fixed one-minute window in Django's cache.

`cache.add` + `cache.incr` are atomic on every backend Switchboard runs on (locmem and
Redis), so concurrent requests, in one process or several, each get a distinct count.
A fixed window can let up to twice the limit through across a minute boundary; that
is the usual trade for one cache key and one round trip per request.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from generation.api_tokens import ApiToken

WINDOW_SECONDS = 60


def seconds_until_allowed(token: ApiToken, *, now: float | None = None) -> float | None:
    """None when this request is within the token's limit, else how long to wait."""
    limit = token.requests_per_minute
    if limit is None:
        return None  # blank in the admin: no limit
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    # The token hash, not its row id: ids can be reused, a hash cannot.
    key = f"switchboard:gateway:rpm:{token.token_hash[:24]}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    if count <= limit:
        return None
    return WINDOW_SECONDS - (now % WINDOW_SECONDS)
