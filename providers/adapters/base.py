"""The one interface every provider kind implements, and the values that cross it.

Consumers (the chat task, the JSON API, the /v1 gateway) do not call adapters
directly: they call `providers.engine.stream_generation` / `generate`, which adds
validation, retries and caching on top of one adapter attempt.

A stream yields `TextDelta` items and then exactly one `GenerationResult`. Upstream
failures never raise out of a stream: the result carries `error` (a `ProviderError`)
with the partial text kept and usage reported or estimated. Closing the iterator
(`aclose()`, or a cancelled task) stops reading upstream at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from providers.errors import ProviderError

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    system: str = ""
    max_tokens: int | None = None
    # None means "the provider's default"; 0 is a real value and is sent as 0.
    temperature: float | None = None
    top_p: float | None = None  # None: the provider's default, as for temperature
    stop: tuple[str, ...] = ()  # stop sequences; empty: none
    # Who may be answered from a response cached for this request (the caller's user):
    # never sent upstream, only part of the cache key.
    cache_scope: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, for a request stored until a worker makes it."""
        data = asdict(self)
        data["messages"] = [[m.role, m.content] for m in self.messages]
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(
            **{
                **data,
                "messages": tuple(ChatMessage(role, content) for role, content in data["messages"]),
                "stop": tuple(data.get("stop", ())),
            }
        )


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # True when the stream broke before the provider reported usage

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass
class Attempt:
    """One upstream call. Retries are separate attempts; metering writes one record each."""

    number: int  # 1-based
    outcome: str  # "ok" or an ErrorKind value
    status_code: int | None = None
    wait_before_retry: float = 0.0  # seconds slept after this attempt, 0 for the last
    time_to_first_token: float | None = None  # seconds
    latency: float = 0.0  # seconds
    usage: Usage = field(default_factory=Usage)


@dataclass
class GenerationResult:
    text: str
    model: str
    finish_reason: str = ""  # "stop", "length", ... as the provider says; "" when failed
    usage: Usage = field(default_factory=Usage)
    error: ProviderError | None = None
    cached: bool = False
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


StreamItem = TextDelta | GenerationResult


class Adapter(Protocol):
    """One attempt at one provider. Built per provider with its decrypted key."""

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]: ...

    async def complete(self, request: GenerationRequest) -> GenerationResult: ...

    async def list_models(self) -> list[str]: ...
