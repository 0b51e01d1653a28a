"""Django's ASGI handler, with each request's sync work run on one of a few kept threads.

Stock Django gives every request a thread of its own for its thread-sensitive sync
work (middleware, the ORM): asgiref's ThreadSensitiveContext makes a new executor per
request. Each request then pays a thread start and a new database connection (SQLite
registers its functions on every connection), and every open SSE stream keeps an idle
OS thread for as long as it is open: 1,000 streams, 1,000 threads.

Here a request is handed one of `WEB_THREADS` single-thread executors ("lanes"), the
one with the fewest calls in flight. Django's guarantee holds: all the sync calls of
one request run on one thread, one at a time, with one connection. Lanes are shared
by requests in turn, never at once within a call, and live as long as the process,
so their database connections can persist (`CONN_MAX_AGE`). A transaction never spans
two sync calls of a request, so requests sharing a lane cannot see each other's.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler


class Lane(ThreadPoolExecutor):
    """A one-thread executor that knows how many calls it has queued or running."""

    def __init__(self, name: str) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self.name = name
        self.in_flight = 0
        self._count_lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self.in_flight += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._count_lock:
            self.in_flight -= 1


class LaneASGIHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        super().__init__()
        self.lanes = [Lane(f"web-{n}") for n in range(max(1, threads))]
        self._start = itertools.cycle(range(len(self.lanes)))

    def pick_lane(self) -> Lane:
        # The least busy lane; ties go round the ring so idle lanes share the load.
        first = next(self._start)
        ring = self.lanes[first:] + self.lanes[:first]
        return min(ring, key=lambda lane: lane.in_flight)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with ThreadSensitiveContext(executor=self.pick_lane()):
            await self.handle(scope, receive, send)
