"""Static files are served by WhiteNoise without pushing requests off the event loop."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.test import AsyncClient, Client
from django.utils.module_loading import import_string

from config.static_middleware import AsyncWhiteNoiseMiddleware

pytestmark = pytest.mark.django_db


APP_CSS = settings.BASE_DIR / "static/css/app.css"


def _body(response) -> bytes:
    if not response.is_async:
        return b"".join(response.streaming_content)

    async def read() -> bytes:
        return b"".join([block async for block in response.streaming_content])

    return async_to_sync(read)()


def test_every_middleware_is_async_capable():
    # One sync-only middleware would make Django adapt the whole chain per request.
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        assert getattr(middleware, "async_capable", False), path


def test_the_async_chain_serves_a_static_file():
    response = async_to_sync(AsyncClient().get)("/static/css/app.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    # Read as an async iterator: Django reads a sync one through a thread, and warns.
    assert response.is_async
    assert _body(response) == APP_CSS.read_bytes()


def test_the_sync_chain_still_serves_a_static_file():
    response = Client().get("/static/css/app.css")
    assert response.status_code == 200
    assert _body(response) == APP_CSS.read_bytes()


def test_other_paths_reach_the_views():
    calls: list[object] = []

    async def view(request):
        calls.append(request)
        return "from the view"

    middleware = AsyncWhiteNoiseMiddleware(view)
    assert iscoroutinefunction(middleware)

    class Request:
        path_info = "/not-static/"

    assert async_to_sync(middleware)(Request()) == "from the view"
    assert len(calls) == 1
