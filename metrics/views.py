"""GET /metrics: Prometheus's text format, summed over the host's processes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from metrics.access import Verdict, verdict
from metrics.collectors import QueueDepthCollector
from metrics.instruments import enabled


def _registry() -> CollectorRegistry:
    # Per scrape: the collector reads the directory's files as they are now.
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated
    registry.register(QueueDepthCollector())
    return registry


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = verdict(request)
    if allowed is Verdict.OFF or not enabled():
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if allowed is Verdict.ADDRESS:
        return HttpResponse("Forbidden.", status=403, content_type="text/plain")
    if allowed is Verdict.NO_TOKEN:
        response = HttpResponse("A bearer token is required.", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain"
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_registry()), content_type=content_type)
