"""Writing usage: one UsageRecord per upstream attempt, priced when written.

Callers (the chat task, the JSON API, the /v1 gateway) pass the
`GenerationResult` the engine returned; budgets live in `usage.budgets` and are
re-exported here so that callers import one module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from metrics.instruments import count_budget_refusal, observe_usage
from providers.adapters.base import Attempt, GenerationResult, Usage
from providers.adapters.embeddings import EmbeddingResult
from usage.budgets import (
    BudgetExceeded,
    release_reservation,
    reserve_budget,
    settle_reservation,
)
from usage.models import (
    OUTCOME_CHOICES,
    OUTCOME_OK,
    OUTCOME_OVER_BUDGET,
    RoutingStep,
    Source,
    UsageRecord,
)
from usage.pricing import normalized, price_usage
from usage.routing_steps import routing_steps
from usage.teams import link_records, teams_of

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from generation.models import Message
    from providers.models import Provider

__all__ = [
    "BudgetExceeded",
    "record_embedding",
    "record_generation",
    "record_refusal",
    "release_reservation",
    "reserve_budget",
    "settle_reservation",
]

_OUTCOMES = {value for value, _label in OUTCOME_CHOICES}


def _idempotency_key(*, message: Message | None, request_id: str) -> str:
    # The unique (request_id, attempt_number) constraint makes a second call for the
    # same message or request a no-op; a chat message is keyed by its primary key.
    if request_id:
        return request_id[:64]
    if message is not None:
        return f"message:{message.pk}"[:64]
    return f"anon:{uuid.uuid4().hex}"


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(round(seconds * 1000), 0)


def _attempts_of(result: GenerationResult) -> list[Attempt]:
    if result.attempts:
        return list(result.attempts)
    # An engine result without attempts: one attempt, if upstream was reached at all.
    usage = result.usage
    if result.ok or usage.input_tokens or usage.output_tokens:
        outcome = OUTCOME_OK if result.error is None else str(result.error.kind)
        return [Attempt(number=1, outcome=outcome, usage=usage)]
    return []


def _build(
    *,
    provider: Provider,
    user: User | None,
    source: str,
    model: str,
    key: str,
    attempt: Attempt,
    cache_hit: bool,
    at: datetime,
    message: Message | None,
    alias: str = "",
    routing_step: str = RoutingStep.NONE,
) -> UsageRecord:
    # A routed call's attempt names its own target; priced at that provider's prices.
    provider = attempt.provider or provider
    model = attempt.model or model
    usage: Usage = normalized(provider.kind, attempt.usage)
    if cache_hit:
        cost: int | None
        cost, snapshot = 0, None  # served from our cache: nothing was billed upstream
    else:
        cost, snapshot = price_usage(provider_kind=provider.kind, model=model, usage=usage, at=at)
    outcome = attempt.outcome if attempt.outcome in _OUTCOMES else "unknown"
    return UsageRecord(
        provider=provider,
        message=message,
        model=model,
        user=user if user is not None and user.is_authenticated else None,
        source=source,
        request_id=key,
        alias=alias[:100],
        routing_step=routing_step,
        attempt_number=attempt.number,
        outcome=outcome,
        status_code=attempt.status_code,
        cache_hit=cache_hit,
        input_tokens=max(usage.input_tokens, 0),
        cached_input_tokens=max(usage.cached_input_tokens, 0),
        cache_write_tokens=max(usage.cache_write_tokens, 0),
        reasoning_tokens=max(usage.reasoning_tokens, 0),
        output_tokens=max(usage.output_tokens, 0),
        total_tokens=max(usage.input_tokens, 0) + max(usage.output_tokens, 0),
        tokens_estimated=usage.estimated,
        ttft_ms=_ms(attempt.time_to_first_token),
        latency_ms=_ms(attempt.latency),
        cost_nanos=cost,
        price_snapshot=snapshot.as_json() if snapshot else None,
        created_at=at,
    )


def _message_deleted(records: list[UsageRecord]) -> bool:
    message_id = records[0].message_id if records else None
    if message_id is None:
        return False
    messages = UsageRecord._meta.get_field("message").related_model._default_manager
    return not messages.filter(pk=message_id).exists()


def _save_once(key: str, records: Iterable[UsageRecord]) -> list[UsageRecord]:
    records = list(records)
    try:
        # The usual case: none recorded before, one INSERT. Short on purpose: SQLite has
        # one write lock, and a writer that holds it across several statements can lose
        # the GIL in between while fifty others sleep in SQLite's busy wait
        # (bench_api_throughput: p99 3.3 s with a SELECT first, in the same transaction).
        with transaction.atomic():
            UsageRecord.objects.bulk_create(records)
            _count_once_committed(records)
    except IntegrityError:
        return _save_missing(key, records)
    if all(r.pk is not None for r in records):
        # PostgreSQL and SQLite return the pks: they are the rows, no need to read back.
        return sorted(records, key=lambda r: r.attempt_number)
    return _read_back(key, records)


def _count_once_committed(records: Iterable[UsageRecord]) -> None:
    # The one place every upstream attempt passes, and only the rows this call inserted
    # (a retried metering is not counted twice), once they are committed. robust: a
    # metrics failure never fails metering.
    transaction.on_commit(lambda: observe_usage(records), robust=True)


def _save_missing(key: str, records: list[UsageRecord]) -> list[UsageRecord]:
    """Record those of `records` not recorded yet (a retried metering), or all of them
    without their message when it was deleted meanwhile."""
    complete = False
    try:
        with transaction.atomic():
            existing = set(
                UsageRecord.objects.filter(request_id=key).values_list("attempt_number", flat=True)
            )
            missing = [r for r in records if r.attempt_number not in existing]
            UsageRecord.objects.bulk_create(missing)
            _count_once_committed(missing)
            complete = not existing
    except IntegrityError:
        # A concurrent writer recorded the same attempts first (theirs stand), or the
        # message was deleted with its conversation meanwhile: the attempts were still
        # billed upstream, so they are recorded without it.
        if _message_deleted(records):
            for record in records:
                record.message = None
            return _save_missing(key, records)
    if complete and all(r.pk is not None for r in records):
        return sorted(records, key=lambda r: r.attempt_number)
    return _read_back(key, records)


def _read_back(key: str, records: list[UsageRecord]) -> list[UsageRecord]:
    wanted = [r.attempt_number for r in records]
    return list(
        UsageRecord.objects.filter(request_id=key, attempt_number__in=wanted).order_by(
            "attempt_number"
        )
    )


def record_generation(
    *,
    provider: Provider,
    user: User | None,
    source: str,
    result: GenerationResult,
    message: Message | None = None,
    request_id: str = "",
    alias: str = "",
) -> list[UsageRecord]:
    """Write one priced record per upstream attempt of `result`; idempotent per key.

    A cache hit is a single zero-cost record. Failed and cancelled attempts are
    recorded with whatever usage they carry (reported or estimated). The attempts of a
    call routed through `alias` each name their own provider and model (`provider` is
    then the one of a cache hit or an attempt naming none).
    """
    if result.cached:
        attempts = [Attempt(number=1, outcome=OUTCOME_OK, usage=result.usage)]
    else:
        attempts = _attempts_of(result)
    return _record_attempts(
        provider=provider,
        user=user,
        source=source,
        model=result.model,
        attempts=attempts,
        cache_hit=result.cached,
        message=message,
        request_id=request_id,
        alias=alias,
    )


def record_embedding(
    *,
    provider: Provider,
    user: User | None,
    source: str,
    result: EmbeddingResult,
    request_id: str,
) -> list[UsageRecord]:
    """One priced record per upstream attempt of an embeddings call (input tokens only,
    at the model's input price); idempotent per request id like `record_generation`."""
    return _record_attempts(
        provider=provider,
        user=user,
        source=source,
        model=result.model,
        attempts=result.attempts,
        cache_hit=False,
        message=None,
        request_id=request_id,
    )


def _record_attempts(
    *,
    provider: Provider,
    user: User | None,
    source: str,
    model: str,
    attempts: list[Attempt],
    cache_hit: bool,
    message: Message | None,
    request_id: str,
    alias: str = "",
) -> list[UsageRecord]:
    source = Source(source).value
    if not attempts:
        return []
    key = _idempotency_key(message=message, request_id=request_id)
    at = timezone.now()
    steps = routing_steps(attempts) if alias else [RoutingStep.NONE] * len(attempts)
    records = [
        _build(
            provider=provider,
            user=user,
            source=source,
            model=model,
            key=key,
            attempt=attempt,
            cache_hit=cache_hit,
            at=at,
            message=message,
            alias=alias,
            routing_step=step,
        )
        for attempt, step in zip(attempts, steps, strict=True)
    ]
    return _save_once(key, records)


def record_refusal(
    *,
    provider: Provider,
    user: User | None,
    source: str,
    model: str,
    message: Message | None = None,
    request_id: str = "",
    alias: str = "",
    scope: str = "user",
) -> UsageRecord:
    """Record a call refused for budget before upstream was reached (attempt 0, $0).
    `scope` is the budget that refused it ("user", "team"), for the metrics."""
    key = _idempotency_key(message=message, request_id=request_id)
    record = _build(
        provider=provider,
        user=user,
        source=Source(source).value,
        model=model,
        key=key,
        attempt=Attempt(number=0, outcome=OUTCOME_OVER_BUDGET),
        cache_hit=False,
        at=timezone.now(),
        message=message,
        alias=alias,
    )
    record.cost_nanos, record.price_snapshot = 0, None
    saved = _save_once(key, [record])[0]
    if record.user is not None:
        # Refused now: counted for the teams the user is in now (a $0 row in their report).
        link_records(
            records=[saved], group_ids=[team.group_id for team in teams_of(user=record.user)]
        )
    count_budget_refusal(source=record.source, scope=scope)
    return saved
