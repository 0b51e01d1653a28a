"""Calls to an alias: each target of a plan in turn through the single-provider engine,
falling back before the first token, within one deadline for the whole call.

- ``stream_routed(targets, request, tracker=...)``: the items of `engine.stream_generation`
  from the target that answered, then one `GenerationResult` whose ``attempts`` name the
  provider and model of each (failed targets' attempts first)
- ``await generate_routed(targets, request, tracker=...)``: the same, not streamed

A failed target is left for the next only when nothing of its answer reached the caller
(no text, reasoning or tool call) and its error is one another provider could avoid; a
`bad_request` would be refused by the next one too. Retries stay with the last target:
before it, another provider is a faster way past an error than a backoff.

Each target's attempts count towards its health (`routing.health`): written beside the
call (a fallback does not wait for it), and done before the call's result is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import TYPE_CHECKING

from providers import engine
from providers.adapters.base import Attempt, GenerationResult
from providers.errors import ErrorKind
from providers.retry import RetryPolicy
from providers.validation import InvalidRequest
from routing import health

if TYPE_CHECKING:
    from providers.adapters.base import GenerationRequest, StreamItem
    from routing.plans import Target

logger = logging.getLogger("routing")

# Errors the next target may well not have: its own rate limit, health, key and account.
FALLBACK_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.OVERLOADED,
        ErrorKind.PROVIDER_ERROR,
        ErrorKind.NETWORK,
        ErrorKind.TIMEOUT,
        ErrorKind.AUTH,
        ErrorKind.BILLING,
        ErrorKind.CONFIGURATION,
    }
)


class RoutedTracker(engine.StreamTracker):
    """A `StreamTracker` shared by every target of a routed call: attempts are numbered
    across targets, and each names the target that made it."""

    def __init__(self) -> None:
        super().__init__()
        self.target: Target | None = None  # the one being tried, then the one that answered

    def begin(self, target: Target | None) -> None:
        self.target, self.finished = target, False

    def name_attempts(self) -> None:
        """Mark the attempts made so far with no target as the current target's."""
        if self.target is not None:
            name_attempts(self.attempts, self.target)

    def interrupted_result(self) -> GenerationResult | None:
        result = super().interrupted_result()
        if result is not None and self.target is not None:
            name_attempts(result.attempts, self.target)
        return result


def name_attempts(attempts: list[Attempt], target: Target) -> None:
    for attempt in attempts:
        if attempt.provider is None:
            attempt.provider, attempt.model = target.provider, target.model


def _falls_back(result: GenerationResult, *, produced: bool, time_left: float) -> bool:
    error = result.error
    return (
        error is not None
        and not produced
        and not result.cached
        and error.kind in FALLBACK_KINDS
        and time_left > 0
    )


def _policy_for(base: RetryPolicy, tracker: RoutedTracker, *, last: bool) -> RetryPolicy:
    # Attempt numbers run on across targets; the policy counts them to stop retrying.
    return replace(base, max_attempts=len(tracker.attempts) + (base.max_attempts if last else 1))


async def stream_routed(
    targets: list[Target],
    request: GenerationRequest,
    *,
    tracker: RoutedTracker | None = None,
) -> AsyncGenerator[StreamItem, None]:
    """Deltas from the target that answers, then one result (see the module docstring).

    Raises `InvalidRequest` only when no target accepts the request's parameters.
    """
    if not targets:
        raise ValueError("a routed call needs at least one target")
    tracker = tracker or RoutedTracker()
    base = RetryPolicy.from_settings()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + base.deadline
    result: GenerationResult | None = None
    writes: list[asyncio.Task[None]] = []
    for index, target in enumerate(targets):
        last = index == len(targets) - 1
        tracker.begin(target)
        made = len(tracker.attempts)
        items = engine.stream_generation(
            target.provider,
            replace(request, model=target.model),
            tracker=tracker,
            policy=_policy_for(base, tracker, last=last),
            deadline=deadline,
        )
        produced = False
        try:
            async for item in items:
                if isinstance(item, GenerationResult):
                    result = item
                else:
                    produced = True
                    yield item
        except InvalidRequest:
            if last and result is None:
                tracker.begin(None)  # every target was skipped: none was asked
                raise
            _skipped(target)
            continue
        finally:
            await items.aclose()
        tracker.name_attempts()
        _count_health(writes, target, tracker.attempts[made:])
        assert result is not None  # the engine's stream ends with one
        if last or not _falls_back(result, produced=produced, time_left=deadline - loop.time()):
            break
        _falling_back(target, result)
    assert result is not None  # a skipped last target with no result before raised
    await _written(writes)
    result.attempts = list(tracker.attempts)
    tracker.finished = True
    yield result


async def generate_routed(
    targets: list[Target],
    request: GenerationRequest,
    *,
    tracker: RoutedTracker | None = None,
) -> GenerationResult:
    """The whole answer of the target that answers (see the module docstring)."""
    if not targets:
        raise ValueError("a routed call needs at least one target")
    tracker = tracker or RoutedTracker()
    base = RetryPolicy.from_settings()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + base.deadline
    result: GenerationResult | None = None
    writes: list[asyncio.Task[None]] = []
    for index, target in enumerate(targets):
        last = index == len(targets) - 1
        tracker.begin(target)
        made = len(tracker.attempts)
        try:
            result = await engine.generate(
                target.provider,
                replace(request, model=target.model),
                tracker=tracker,
                policy=_policy_for(base, tracker, last=last),
                deadline=deadline,
            )
        except InvalidRequest:
            if last and result is None:
                raise
            _skipped(target)
            continue
        tracker.name_attempts()
        _count_health(writes, target, tracker.attempts[made:])
        if last or not _falls_back(result, produced=False, time_left=deadline - loop.time()):
            break
        _falling_back(target, result)
    assert result is not None
    await _written(writes)
    result.attempts = list(tracker.attempts)
    tracker.finished = True
    return result


def _count_health(writes: list[asyncio.Task[None]], target: Target, made: list[Attempt]) -> None:
    if health.has_news(target, made):
        writes.append(asyncio.ensure_future(health.arecord(target, made)))


async def _written(writes: list[asyncio.Task[None]]) -> None:
    # Health is a hint: a cache that cannot be written must not fail the call.
    for outcome in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(outcome, Exception):
            logger.warning("routing health not recorded: %s", type(outcome).__name__)


def _falling_back(target: Target, result: GenerationResult) -> None:
    # Kinds and names only: never prompt text, never a key.
    kind = result.error.kind.value if result.error else "ok"
    logger.info("routing fallback from provider=%s model=%s outcome=%s", *_who(target), kind)


def _skipped(target: Target) -> None:
    logger.info("routing skipped provider=%s model=%s: request invalid for it", *_who(target))


def _who(target: Target) -> tuple[object, str]:
    return target.provider.pk, target.model
