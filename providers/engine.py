"""The public entry points for calling providers: validation, retries, deadline, cache, logs.

Other apps call these, never an adapter directly:

- ``validate_request(provider, request)`` / ``await avalidate_request(...)``
- ``stream_generation(provider, request)``: an async iterator of `ReasoningDelta`,
  `TextDelta` and `ToolCallDelta` items then one `GenerationResult` (with every upstream attempt in
  ``result.attempts``)
- ``await generate(provider, request)``: the same, not streamed (a `StreamTracker`
  meters it when cancelled)
- ``await avalidate_embedding_request(provider, request)`` /
  ``await embed(provider, request)``: an `EmbeddingResult` (an `EmbeddingTracker` meters
  it when cancelled)
- ``list_models(provider)`` / ``await alist_models(provider)``: cached
- ``test_connection(provider)`` / ``await atest_connection(provider)``
- ``await aclose_clients()``: close the SDK clients of the running loop; call it before
  closing an event loop you created (clients are pooled per loop)

Invalid requests raise `InvalidRequest` before any upstream call; upstream failures
never raise, they come back as ``result.error``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from providers import cache as response_cache
from providers.adapters import get_adapter
from providers.adapters.base import (
    Attempt,
    GenerationRequest,
    GenerationResult,
    ReasoningDelta,
    ReasoningPart,
    StreamItem,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)
from providers.adapters.clients import aclose_clients
from providers.adapters.common import estimate_usage, prompt_chars
from providers.adapters.embeddings import (
    EmbeddingRequest,
    EmbeddingResult,
    embedding_tokens_estimate,
)
from providers.adapters.error_mapping import provider_error
from providers.connection import atest_connection, test_connection
from providers.errors import ErrorKind, ProviderError
from providers.models_list import alist_models, cached_models, list_models
from providers.retry import RetryPolicy
from providers.validation import InvalidRequest, check_embedding_request, check_request

if TYPE_CHECKING:
    from providers.models import Provider

__all__ = [
    "EmbeddingTracker",
    "InvalidRequest",
    "aclose_clients",
    "alist_models",
    "atest_connection",
    "avalidate_embedding_request",
    "avalidate_request",
    "embed",
    "generate",
    "list_models",
    "stream_generation",
    "test_connection",
    "validate_request",
]

logger = logging.getLogger("providers")


def validate_request(provider: Provider, request: GenerationRequest) -> GenerationRequest:
    """The request with its model resolved, or InvalidRequest. For sync callers."""
    check_request(provider, request, known_models=None)  # cheap checks before any fetch
    try:
        asyncio.get_running_loop()
        known = cached_models(provider)  # inside a loop: never block it on a fetch
    except RuntimeError:
        known = _models_or_none(list_models, provider)
    return check_request(provider, request, known)


async def avalidate_request(provider: Provider, request: GenerationRequest) -> GenerationRequest:
    check_request(provider, request, known_models=None)
    try:
        known = await alist_models(provider)
    except ProviderError:
        known = None  # no published list, or it could not be fetched: skip the check
    return check_request(provider, request, known)


async def avalidate_embedding_request(
    provider: Provider, request: EmbeddingRequest
) -> EmbeddingRequest:
    """The request checked against the provider (NotOffered when its kind has no
    embeddings), or InvalidRequest."""
    check_embedding_request(provider, request, known_models=None)
    try:
        known = await alist_models(provider)
    except ProviderError:
        known = None
    return check_embedding_request(provider, request, known)


def _models_or_none(fetch: Callable[[Provider], list[str]], provider: Provider) -> list[str] | None:
    try:
        return fetch(provider)
    except ProviderError:
        return None  # no published list, or it could not be fetched: skip the check


class StreamTracker:
    """What a call (streamed or not) has done so far, for a caller that stops it early.

    A stream closed early (a cancel button, a client that went away), or a `generate`
    cancelled (its client hung up), never gives its `GenerationResult`;
    `interrupted_result()` gives one instead: the text so far, usage estimated, error
    `cancelled`, and every attempt including the interrupted one, so that metering
    still records what was consumed.
    """

    def __init__(self) -> None:
        self.request: GenerationRequest | None = None
        self.attempts: list[Attempt] = []
        self.parts: list[str] = []
        self.reasoning: list[str] = []  # the current attempt's reasoning so far
        self.calls: list[str] = []  # the current attempt's tool calls' names and arguments
        self.started: float | None = None  # loop time the current attempt began
        self.ttft: float | None = None
        self.finished = False

    def interrupted_result(self) -> GenerationResult | None:
        """None when the stream finished (its own result counts) or never called upstream."""
        if self.finished or self.request is None:
            return None
        if self.started is None and not self.attempts:
            return None  # stopped before calling upstream (or while replaying the cache)
        started = self.started  # None: no attempt in flight
        text = "".join(self.parts) if started is not None else ""
        reasoning = "".join(self.reasoning) if started is not None else ""
        # Tool calls cut off are output too (metered), though never a call to make.
        calls = "".join(self.calls) if started is not None else ""
        result = _failed(self.request, text, ErrorKind.CANCELLED, reasoning=reasoning, calls=calls)
        result.attempts = list(self.attempts)
        if started is not None:
            # The event loop's clock is time.monotonic().
            latency = time.monotonic() - started
            result.attempts.append(_attempt(len(self.attempts) + 1, result, self.ttft, latency))
        else:
            result.usage = Usage(estimated=True)  # consumed by the attempts already listed
        return result


async def stream_generation(
    provider: Provider,
    request: GenerationRequest,
    *,
    tracker: StreamTracker | None = None,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> AsyncGenerator[StreamItem, None]:
    """Reasoning and text deltas, then one result. Pass a `StreamTracker` to meter an
    early stop. A routed call (routing.engine) passes its own `policy` (no retries when
    another target follows) and `deadline` (loop time, shared by all its targets); a
    tracker passed again goes on numbering attempts after those it holds."""
    tracker = tracker or StreamTracker()
    if (error := _configuration_error(provider)) is not None:
        yield _log(provider, request, GenerationResult(text="", model=request.model, error=error))
        return
    request = await avalidate_request(provider, request)
    tracker.request = request
    cache_key = None
    if response_cache.response_cacheable(provider, request):
        cache_key = response_cache.response_key(provider, request)
        hit = await response_cache.get_response(cache_key)
        if hit is not None:
            cached = _cached_result(hit)
            if cached.reasoning_text:
                for piece in _replay_pieces(cached.reasoning_text):
                    yield ReasoningDelta(piece)
            for piece in _replay_pieces(cached.text):
                yield TextDelta(piece)
            for index, call in enumerate(cached.tool_calls):
                yield ToolCallDelta(index, call.id, call.name, call.arguments)
            yield _log(provider, request, cached)
            return
    adapter = get_adapter(provider)
    policy = policy or RetryPolicy.from_settings()
    loop = asyncio.get_running_loop()
    deadline = deadline if deadline is not None else loop.time() + policy.deadline
    attempts = tracker.attempts
    try:
        while True:
            parts: list[str] = []
            thoughts: list[str] = []
            calls: list[str] = []
            started, ttft = loop.time(), None
            tracker.started, tracker.ttft = started, None
            tracker.parts, tracker.reasoning, tracker.calls = parts, thoughts, calls
            upstream = adapter.stream(request)
            try:
                result = None
                while result is None:
                    try:
                        async with asyncio.timeout_at(deadline):
                            item = await anext(upstream)
                    except TimeoutError:
                        result = _failed(
                            request,
                            "".join(parts),
                            ErrorKind.TIMEOUT,
                            reasoning="".join(thoughts),
                            calls="".join(calls),
                        )
                    except StopAsyncIteration:  # an adapter that broke its contract
                        result = _failed(
                            request,
                            "".join(parts),
                            ErrorKind.UNKNOWN,
                            reasoning="".join(thoughts),
                            calls="".join(calls),
                        )
                    else:
                        if isinstance(item, TextDelta | ReasoningDelta | ToolCallDelta):
                            # Reasoning is the first output a user sees: it ends the wait.
                            ttft = loop.time() - started if ttft is None else ttft
                            tracker.ttft = ttft
                            if isinstance(item, ToolCallDelta):
                                calls.append(item.name + item.arguments_fragment)
                            else:
                                (parts if isinstance(item, TextDelta) else thoughts).append(
                                    item.text
                                )
                            yield item
                        else:
                            result = item
            finally:
                await upstream.aclose()
            attempts.append(_attempt(len(attempts) + 1, result, ttft, loop.time() - started))
            tracker.started = None  # this attempt is recorded; a retry starts a new one
            wait = _retry_wait(
                policy,
                attempts[-1],
                result.error,
                # Reasoning (or a tool call) already handed on counts as text: another
                # attempt would think again, and its reader would get it twice.
                produced_text=bool(result.text or result.reasoning_text or calls),
                remaining=deadline - loop.time(),
            )
            if wait is None:
                break
            await asyncio.sleep(wait)
    except (GeneratorExit, asyncio.CancelledError):
        logger.info(
            "generation cancelled provider=%s model=%s attempts=%d",
            provider.pk,
            request.model,
            len(attempts) + 1,
        )
        raise
    tracker.finished = True
    result.attempts = list(attempts)
    if cache_key and result.ok:
        await response_cache.store_response(provider, cache_key, result)
    yield _log(provider, request, result)


async def generate(
    provider: Provider,
    request: GenerationRequest,
    *,
    tracker: StreamTracker | None = None,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> GenerationResult:
    """The whole answer at once. Pass a `StreamTracker` to meter a cancelled call;
    `policy` and `deadline` as for `stream_generation`."""
    tracker = tracker or StreamTracker()
    if (error := _configuration_error(provider)) is not None:
        return _log(provider, request, GenerationResult(text="", model=request.model, error=error))
    request = await avalidate_request(provider, request)
    tracker.request = request
    cache_key = None
    if response_cache.response_cacheable(provider, request):
        cache_key = response_cache.response_key(provider, request)
        hit = await response_cache.get_response(cache_key)
        if hit is not None:
            return _log(provider, request, _cached_result(hit))
    adapter = get_adapter(provider)
    result = await _with_retries(
        lambda: adapter.complete(request),
        lambda: _failed(request, "", ErrorKind.TIMEOUT),
        tracker,
        policy=policy,
        deadline=deadline,
    )
    tracker.finished = True
    if cache_key and result.ok:
        await response_cache.store_response(provider, cache_key, result)
    return _log(provider, request, result)


class _Outcome(Protocol):
    """What the retry loop reads of an attempt's result (generation or embeddings)."""

    error: ProviderError | None
    usage: Usage
    attempts: list[Attempt]


class _AttemptLog(Protocol):
    """Where the retry loop keeps its attempts, for a caller that stops it early."""

    attempts: list[Attempt]
    started: float | None


OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


async def _with_retries(
    call: Callable[[], Awaitable[OutcomeT]],
    timed_out: Callable[[], OutcomeT],
    log: _AttemptLog,
    *,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> OutcomeT:
    """`call()` until it succeeds or the policy stops, within one deadline.

    For calls that are not streamed: nothing of a failed attempt reached the caller, so
    any retryable failure may be retried. `timed_out()` is the result of an attempt the
    deadline ended.
    """
    policy = policy or RetryPolicy.from_settings()
    loop = asyncio.get_running_loop()
    deadline = deadline if deadline is not None else loop.time() + policy.deadline
    attempts = log.attempts
    while True:
        started = log.started = loop.time()
        try:
            async with asyncio.timeout_at(deadline):
                result = await call()
        except TimeoutError:
            result = timed_out()
        attempts.append(_attempt(len(attempts) + 1, result, None, loop.time() - started))
        log.started = None  # this attempt is recorded; a retry starts a new one
        wait = _retry_wait(
            policy,
            attempts[-1],
            result.error,
            produced_text=False,
            remaining=deadline - loop.time(),
        )
        if wait is None:
            result.attempts = list(attempts)
            return result
        await asyncio.sleep(wait)


class EmbeddingTracker:
    """The attempts of an `embed` call, for a caller cancelled meanwhile (its client hung
    up): `interrupted_result()` then gives every attempt made, the one cut short with its
    input estimated (upstream may well have computed and billed it)."""

    def __init__(self) -> None:
        self.request: EmbeddingRequest | None = None
        self.attempts: list[Attempt] = []
        self.started: float | None = None  # loop time the current attempt began
        self.finished = False

    def interrupted_result(self) -> EmbeddingResult | None:
        """None when the call finished (its own result counts) or never called upstream."""
        if self.finished or self.request is None:
            return None
        if self.started is None and not self.attempts:
            return None
        result = EmbeddingResult(
            model=self.request.model, error=provider_error(ErrorKind.CANCELLED)
        )
        result.attempts = list(self.attempts)
        if self.started is not None:
            result.usage = _embedding_estimate(self.request)
            latency = time.monotonic() - self.started  # the event loop's clock
            result.attempts.append(_attempt(len(self.attempts) + 1, result, None, latency))
        return result


async def embed(
    provider: Provider, request: EmbeddingRequest, *, tracker: EmbeddingTracker | None = None
) -> EmbeddingResult:
    """One vector per input, with every upstream attempt in ``result.attempts``.

    An invalid request (or a provider without embeddings) raises `InvalidRequest` before
    any call, as for `generate`; upstream failures never raise, they come back as
    ``result.error``. Not cached: vectors are cheap to ask for again and large to keep.
    """
    tracker = tracker or EmbeddingTracker()
    if (error := _configuration_error(provider)) is not None:
        return _log_embedding(provider, request, EmbeddingResult(model=request.model, error=error))
    request = await avalidate_embedding_request(provider, request)
    tracker.request = request
    adapter = get_adapter(provider)

    def timed_out() -> EmbeddingResult:
        return EmbeddingResult(
            model=request.model,
            usage=_embedding_estimate(request),
            error=provider_error(ErrorKind.TIMEOUT),
        )

    result = await _with_retries(lambda: adapter.embed(request), timed_out, tracker)
    tracker.finished = True
    return _log_embedding(provider, request, result)


def _embedding_estimate(request: EmbeddingRequest) -> Usage:
    return Usage(input_tokens=embedding_tokens_estimate(request), estimated=True)


def _log_embedding(
    provider: Provider, request: EmbeddingRequest, result: EmbeddingResult
) -> EmbeddingResult:
    # Sizes and kinds only: never the input text, never a key.
    logger.info(
        "embeddings provider=%s model=%s outcome=%s attempts=%d inputs=%d input_size=%d "
        "input_tokens=%d",
        provider.pk,
        request.model,
        result.error.kind.value if result.error else "ok",
        len(result.attempts),
        len(request.inputs),
        request.input_size(),
        result.usage.input_tokens,
    )
    return result


def _configuration_error(provider: Provider) -> ProviderError | None:
    """Why calls to `provider` cannot go out as configured, or None.

    Checked before anything else (the models list is a call too): such a failure is no
    upstream attempt, so the result carries none and metering records nothing.
    """
    try:
        provider.api_key_for_calls()
    except ProviderError as error:
        return error
    return None


def _retry_wait(
    policy: RetryPolicy,
    attempt: Attempt,
    error: ProviderError | None,
    *,
    produced_text: bool,
    remaining: float,
) -> float | None:
    if error is None:
        return None
    wait = policy.wait_after(
        attempt.number, error, produced_text=produced_text, remaining=remaining
    )
    if wait is not None:
        attempt.wait_before_retry = wait
    return wait


def _attempt(number: int, result: _Outcome, ttft: float | None, latency: float) -> Attempt:
    error = result.error
    return Attempt(
        number=number,
        outcome=error.kind.value if error else "ok",
        status_code=error.status_code if error else 200,
        time_to_first_token=ttft,
        latency=latency,
        usage=result.usage,
    )


def _failed(
    request: GenerationRequest, text: str, kind: ErrorKind, *, reasoning: str = "", calls: str = ""
) -> GenerationResult:
    """A result for an attempt the engine ended (the deadline): usage can only be estimated.
    Reasoning cut off is kept to show, unsigned (never sent back); tool calls cut off
    (`calls`, their names and arguments so far) count as output, never as calls to make."""
    return GenerationResult(
        text=text,
        model=request.model,
        usage=estimate_usage(request, text + calls, None, reasoning=reasoning),
        error=provider_error(kind),
        reasoning=(ReasoningPart(reasoning),) if reasoning else (),
    )


def _cached_result(hit: dict[str, Any]) -> GenerationResult:
    # No upstream attempt and no tokens consumed: metering records a cache hit at zero cost.
    return GenerationResult(
        text=hit["text"],
        model=hit["model"],
        finish_reason=hit["finish_reason"],
        cached=True,
        reasoning=tuple(ReasoningPart.from_json(part) for part in hit.get("reasoning", ())),
        tool_calls=tuple(ToolCallPart(**call) for call in hit.get("tool_calls", ())),
    )


def _replay_pieces(text: str) -> list[str]:
    """Cached text split into word-sized deltas, so a replay streams like an answer."""
    return re.findall(r"\s*\S+|\s+", text) or [text]


def _log(
    provider: Provider, request: GenerationRequest, result: GenerationResult
) -> GenerationResult:
    # Lengths and kinds only: never prompt or answer text, never a key.
    logger.info(
        "generation provider=%s model=%s outcome=%s attempts=%d cached=%s "
        "prompt_chars=%d response_chars=%d reasoning_chars=%d tool_calls=%d input_tokens=%d "
        "output_tokens=%d",
        provider.pk,
        request.model,
        result.error.kind.value if result.error else "ok",
        len(result.attempts),
        result.cached,
        prompt_chars(request),
        len(result.text),
        len(result.reasoning_text),
        len(result.tool_calls),
        result.usage.input_tokens,
        result.usage.output_tokens,
    )
    return result
