"""CPU cost of the Prometheus metrics on the request path, in one process.

Run: ``.venv/bin/python -m tests.bench.bench_metrics_overhead``

Times, per call: the request middleware around a view that does nothing (metrics on,
against the same chain without it), and counting one metered attempt
(`observe_usage`: attempts, tokens, cost, TTFT and latency), with the values in a
multiprocess folder as deployed. Medians of several repeats, in microseconds.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable

REPEATS, CALLS = 7, 20_000


def per_call_us(fn: Callable[[], object]) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(CALLS):
            fn()
        samples.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(samples)


def main() -> None:
    folder = tempfile.mkdtemp(prefix="switchboard-metrics-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=folder,
        SECRET_KEY="bench-only-secret-key-0123456789abcdef0123456789",
        METRICS_TOKEN="bench-metrics-token-0123456789",
        PROMETHEUS_MULTIPROC_DIR=folder,
    )
    import django

    django.setup()
    from django.http import HttpRequest, HttpResponse
    from django.urls import resolve

    from metrics.instruments import observe_usage
    from metrics.middleware import RequestMetricsMiddleware
    from providers.models import Provider
    from usage.models import UsageRecord

    response = HttpResponse()
    request = HttpRequest()
    request.resolver_match = resolve("/v1/chat/completions")

    def view(_request: HttpRequest) -> HttpResponse:
        return response

    middleware = RequestMetricsMiddleware(view)
    provider = Provider(name="Bench", kind="openai", default_model="fake-model")
    record = UsageRecord(
        provider=provider,
        model="fake-model",
        attempt_number=1,
        outcome="ok",
        input_tokens=120,
        output_tokens=40,
        cost_nanos=5000,
        ttft_ms=55,
        latency_ms=260,
    )
    bare = per_call_us(lambda: view(request))
    wrapped = per_call_us(lambda: middleware(request))
    metering = per_call_us(lambda: observe_usage([record]))
    print(f"request middleware: {wrapped - bare:.2f} us per request ({wrapped:.2f} vs {bare:.2f})")
    print(f"counting one metered attempt: {metering:.2f} us")


if __name__ == "__main__":
    main()
