"""ASGI entry point, served by uvicorn.

Django's ASGI handler (here with kept request threads, see asgi_handler.py) does not
speak the lifespan protocol, so this wrapper does: in the embedded deployment (no
REDIS_URL) it starts the huey consumer threads inside the server process on startup
and stops them gracefully on shutdown.
"""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, before our handler

from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from config import gc_tuning  # noqa: E402
from config.asgi_handler import LaneASGIHandler  # noqa: E402

django_application = LaneASGIHandler(threads=settings.WEB_THREADS)
get_resolver().url_patterns  # noqa: B018  (imports every view and what they import)
gc_tuning.tune_for_server()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        from config.embedded_worker import lifespan

        await lifespan(receive, send)
        return
    await django_application(scope, receive, send)
