"""ASGI entry point, served by uvicorn: Django's own ASGI application, unchanged.

Django's handler does not speak the lifespan protocol, so this wrapper answers it: in
the embedded deployment (no REDIS_URL) it starts the huey consumer threads inside the
server process on startup and stops them gracefully on shutdown.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from django.urls import get_resolver  # noqa: E402

from config import gc_tuning  # noqa: E402
from metrics import multiproc  # noqa: E402

get_resolver().url_patterns  # noqa: B018  (imports every view and what they import)
gc_tuning.tune_for_server()
multiproc.start_process()  # this web process's metrics files (metrics/multiproc.py)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        from config.embedded_worker import lifespan

        await lifespan(receive, send)
        return
    await django_application(scope, receive, send)
