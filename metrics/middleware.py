"""Counts every HTTP response by view and status (switchboard_http_requests_total).

The view label is the route's name (`generation:stream`, `admin:index`; the view's
dotted path for a route without a name), never the path: paths carry ids and user
input, route names are as many as the code has. A request that matched no route is
"unmatched".
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponseBase

from metrics.instruments import count_request, enabled

UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    # Sync only: the chain below it runs in sync mode (config/settings.py, WhiteNoise),
    # so this adds no thread hop.
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        if not enabled():
            raise MiddlewareNotUsed  # metrics off: not in the chain at all
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        count_request(view=match.view_name if match else UNMATCHED, status=response.status_code)
        return response
