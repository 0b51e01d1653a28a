"""What Switchboard counts, and the calls that count it.

Every function is a no-op while metrics are off (METRICS_ENABLED false). Values are
prometheus_client's, in multiprocess mode: each process writes its own file in
PROMETHEUS_MULTIPROC_DIR and /metrics sums them (see `multiproc`).

Labels are bounded (see `labels`): HTTP requests by route name, never the path; upstream
work by provider name and a capped model label; no user, key or prompt anywhere.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

from metrics.labels import model_label, provider_label

if TYPE_CHECKING:
    from usage.models import UsageRecord

NANOS_PER_USD = 1_000_000_000

HTTP_REQUESTS = Counter(
    "switchboard_http_requests",
    "HTTP responses by view (route name) and status code.",
    ["view", "status"],
    registry=None,
)
UPSTREAM_ATTEMPTS = Counter(
    "switchboard_upstream_attempts",
    "Upstream attempts (one per usage record) by provider, model and outcome; a cache "
    "hit is outcome cache_hit.",
    ["provider", "model", "outcome"],
    registry=None,
)
UPSTREAM_TTFT = Histogram(
    "switchboard_upstream_ttft_seconds",
    "Time from an upstream call to its first token, by provider.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30),
    registry=None,
)
UPSTREAM_LATENCY = Histogram(
    "switchboard_upstream_latency_seconds",
    "Duration of an upstream attempt, from the call to its last byte, by provider.",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
    registry=None,
)
TOKENS = Counter(
    "switchboard_tokens",
    "Tokens of upstream attempts (not cache hits), by provider, model and direction "
    "(input, output).",
    ["provider", "model", "direction"],
    registry=None,
)
COST = Counter(
    "switchboard_cost_usd",
    "Estimated cost of upstream attempts in US dollars, by provider and model.",
    ["provider", "model"],
    registry=None,
)
BUDGET_REFUSALS = Counter(
    "switchboard_budget_refusals",
    "Calls refused before upstream because a budget could not cover them, by source "
    "(chat, api) and the budget's scope (user, team).",
    ["source", "scope"],
    registry=None,
)
# livesum: the sum over the processes alive; a dead process's streams do not count
# (its file is removed by multiprocess.mark_process_dead).
SSE_STREAMS_OPEN = Gauge(
    "switchboard_sse_streams_open",
    "SSE streams of chat answers open now, over all web processes.",
    multiprocess_mode="livesum",
    registry=None,
)

OUTCOME_CACHE_HIT = "cache_hit"

M = TypeVar("M", Counter, Histogram)
# (metric, label values) -> the child: labels() validates and locks on every call, and
# the request path pays for every microsecond (bench_metrics_overhead). As bounded as
# the labels are; a race only stores the same child twice.
_children: dict[tuple[Any, ...], Any] = {}


def child(metric: M, *values: str) -> M:
    key = (metric, *values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def enabled() -> bool:
    return bool(settings.METRICS_ENABLED)


def count_request(*, view: str, status: int) -> None:
    """One HTTP response (the middleware's call; it runs only while metrics are on)."""
    child(HTTP_REQUESTS, view, str(status)).inc()


def count_budget_refusal(*, source: str, scope: str = "user") -> None:
    """One call refused for budget. `scope` is whose budget: "user" or "team"."""
    if enabled():
        child(BUDGET_REFUSALS, source, scope).inc()


def observe_usage(records: Iterable[UsageRecord]) -> None:
    """Count the upstream attempts just recorded (call once per record, after commit)."""
    if not enabled():
        return
    for record in records:
        if record.attempt_number < 1:
            continue  # a refusal (attempt 0): counted by count_budget_refusal
        provider = provider_label(record.provider)
        model = model_label(record.provider, record.model, priced=record.price_snapshot is not None)
        outcome = OUTCOME_CACHE_HIT if record.cache_hit else record.outcome
        child(UPSTREAM_ATTEMPTS, provider, model, outcome).inc()
        if record.cache_hit:
            continue  # served by our cache: no upstream tokens, cost or time
        if record.input_tokens:
            child(TOKENS, provider, model, "input").inc(record.input_tokens)
        if record.output_tokens:
            child(TOKENS, provider, model, "output").inc(record.output_tokens)
        if record.cost_nanos:
            child(COST, provider, model).inc(record.cost_nanos / NANOS_PER_USD)
        if record.ttft_ms is not None:
            child(UPSTREAM_TTFT, provider).observe(record.ttft_ms / 1000)
        if record.latency_ms:
            child(UPSTREAM_LATENCY, provider).observe(record.latency_ms / 1000)


def counted_stream(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`stream`, counted in SSE_STREAMS_OPEN while it is open (until it ends, fails or
    the client goes away); `stream` itself while metrics are off."""
    return _counted(stream) if enabled() else stream


async def _counted(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    SSE_STREAMS_OPEN.inc()
    try:
        async for chunk in stream:
            yield chunk
    finally:
        SSE_STREAMS_OPEN.dec()
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()  # its own cleanup now, not at garbage collection
