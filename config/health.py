"""GET /healthz: are the database, cache, task queue and stream relay reachable?

For load balancers and uptime checks: no login, no secrets, no settings in the answer,
only each part's name and "ok" or "error". 200 when all are up, 503 otherwise.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key, value = f"healthz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, 10)
    if cache.get(key) != value:
        raise RuntimeError("the cache did not return what was stored")
    cache.delete(key)


def _queue() -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.pending_count()


def _relay() -> None:
    from generation.relay import get_relay

    get_relay().ping()


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "queue": _queue,
    "relay": _relay,
}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:  # any failure means "down"; the log says why, the answer does not
            logger.exception("Health check %s failed", name)
            results[name] = "error"
        else:
            results[name] = "ok"
    healthy = all(state == "ok" for state in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": results}, status=200 if healthy else 503
    )
