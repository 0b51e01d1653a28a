"""Django's ASGI handler, with each request's sync work run on one of a few kept threads.

Stock Django gives every request a thread of its own for its thread-sensitive sync
work (middleware, the ORM): asgiref's ThreadSensitiveContext makes a new executor per
request. Each request then pays a thread start and a new database connection (SQLite
registers its functions on every connection), and every open SSE stream keeps an idle
OS thread for as long as it is open: 1,000 streams, 1,000 threads.

Here a request is handed a single-thread executor (a "lane"): a free one, else a new
one, up to `WEB_THREADS`, else the least loaded. Django's guarantee
holds: all the sync calls of one request run on one thread, one at a time, with one
connection. Lanes are shared by requests in turn, never within a call, and live as
long as the process, so their database connections can persist (`CONN_MAX_AGE`). A
transaction never spans two sync calls of a request, so requests sharing a lane
cannot see each other's.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, get_resolver


class Lane(ThreadPoolExecutor):
    """A one-thread executor that knows how many calls it has queued or running."""

    def __init__(self, name: str) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self.name = name
        self.in_flight = 0  # calls queued or running
        self.requests = 0  # requests assigned and not finished
        self._count_lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self.in_flight += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def load(self) -> tuple[int, int]:
        return self.in_flight, self.requests

    def _done(self, _future: Future[Any]) -> None:
        with self._count_lock:
            self.in_flight -= 1


class LaneASGIHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.max_lanes = max(1, threads)
        self.lanes: list[Lane] = []
        # The same middleware, loaded for sync calls: see get_response_async.
        self.sync_handler = BaseHandler()
        self.sync_handler.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # A sync view runs with its whole middleware chain in one call on its lane, as
        # under WSGI. Through the async chain every stock middleware hook is a thread
        # hop of its own (16 for a chat send), and under load each hop waits for the
        # GIL. Async views (the gateway, the model picker) and static files keep the async
        # chain, which serves them without a thread.
        if self._is_sync_view(request):
            get_response = sync_to_async(self.sync_handler.get_response, thread_sensitive=True)
            return await get_response(request)
        return await super().get_response_async(request)

    def _is_sync_view(self, request: HttpRequest) -> bool:
        if settings.STATIC_URL and request.path_info.startswith(settings.STATIC_URL):
            return False
        try:
            match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
        except Resolver404:
            return False
        return not iscoroutinefunction(match.func)

    def pick_lane(self) -> Lane:
        # The least loaded lane: no call in flight first, then the fewest requests (an
        # open SSE stream is a request with nothing in flight). A sync view may hold its
        # lane for a whole upstream call (the API's async_to_sync), so unless a lane is
        # entirely free another is added, up to the limit; past it requests share.
        best = min(self.lanes, key=Lane.load, default=None)
        if best is not None and best.load() == (0, 0):
            return best
        if len(self.lanes) < self.max_lanes:
            best = Lane(f"web-{len(self.lanes)}")
            self.lanes.append(best)
        assert best is not None
        return best

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        lane = self.pick_lane()
        lane.requests += 1  # only ever touched on the event loop's thread
        try:
            async with ThreadSensitiveContext(executor=lane):
                await self.handle(scope, receive, send)
        finally:
            lane.requests -= 1
