"""WhiteNoise's static file middleware, usable on both sides of Django's handler.

WhiteNoise 6 ships a sync-only middleware. One sync middleware in the stack makes Django
adapt the whole chain: every request, the async SSE view included, hops from the event
loop to a thread and back, and an open stream keeps its thread for its whole life. This
subclass serves files exactly as WhiteNoise does and, for everything else, awaits the
next handler when Django runs it as async, so the request stays on the event loop.
Under ASGI a file's body is read as an async iterator, too: Django would otherwise
read a sync one through a thread and warn about it on every file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any], **kwargs: Any) -> None:
        super().__init__(get_response, **kwargs)
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def _static_file(self, request: HttpRequest) -> Any:
        # The same lookup as WhiteNoiseMiddleware.__call__.
        if self.autorefresh:
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    def __call__(self, request: HttpRequest) -> Any:
        if self._is_async:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        static_file = self._static_file(request)
        if static_file is not None:
            # Opening a local file (and, with autorefresh in development, a stat) is
            # quick enough to stay on the loop, and so are its block reads.
            response = self.serve(static_file, request)
            if response.streaming and not response.is_async:
                response.streaming_content = _blocks(response.streaming_content)
            return response
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        return await get_response(request)


async def _blocks(blocks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for block in blocks:
        yield block
