"""Fixtures for the chat: users, providers on the fake upstream, a real huey consumer,
the relay backend under test, and an SSE reader over Django's AsyncClient."""

from __future__ import annotations

import asyncio
import html
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, override_settings
from django.utils import timezone
from huey.consumer import Consumer

from config.embedded_worker import create_consumer, start_consumer, stop_consumer
from generation import relay as relay_module
from generation import services
from generation.models import Conversation, Message
from providers.fake_upstream import Knobs
from providers.kinds import ProviderKind
from providers.models import Provider
from routing.models import Alias, AliasTarget

# The Redis the relay tests use: REDIS_URL when set (each checkout may be given a
# database of its own), else database 15.
REDIS_TEST_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


@pytest.fixture
def give_budget() -> Callable[..., None]:
    """Give a user a monthly limit (and the fake's model a price), so that their calls
    hold budget: a user without a limit holds nothing and has no Reservation rows."""

    def give(user, limit: str = "100.00") -> None:
        from usage.models import ModelPrice, UserBudget

        for kind in ProviderKind:
            ModelPrice.objects.get_or_create(
                provider_kind=kind.value,
                model="fake-model",
                match=ModelPrice.Match.EXACT,
                valid_from=datetime(2020, 1, 1, tzinfo=UTC),
                defaults={"input_per_mtok": Decimal("1"), "output_per_mtok": Decimal("2")},
            )
        UserBudget.objects.update_or_create(user=user, defaults={"monthly_limit": Decimal(limit)})

    return give


@pytest.fixture
def price_fake_model() -> Callable[[Provider], None]:
    """Price the fake's model for a provider's kind: $2 in and $8 out per million tokens,
    from yesterday on."""

    def price(provider: Provider) -> None:
        from usage.models import ModelPrice

        ModelPrice.objects.create(
            provider_kind=provider.kind,
            model="fake-model",
            input_per_mtok=Decimal("2"),
            output_per_mtok=Decimal("8"),
            valid_from=timezone.now() - timedelta(days=1),
        )

    return price


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("mallory", password="pw-mallory-123")


@pytest.fixture
def make_chat_provider(fake_upstream) -> Callable[..., Provider]:
    """A Provider on the fake upstream; knobs ("delay=5&tokens=20") go in its base URL
    (the Anthropic format's for kind="anthropic")."""
    from tests.providers.fake_helpers import BASE_URLS

    made = 0

    def make(knobs: str = "", key: str = "sk-test-0123456789", **fields: object) -> Provider:
        nonlocal made
        made += 1
        fields.setdefault("name", f"Fake {made}")
        fields.setdefault("kind", "openai")
        fields.setdefault("default_model", "fake-model")
        base_url = BASE_URLS[str(fields["kind"])](fake_upstream, knobs)
        provider = Provider(base_url=base_url, **fields)
        provider.set_api_key(key)
        provider.save()
        return provider

    return make


@pytest.fixture
def make_alias(db) -> Callable[..., Alias]:
    """An alias routing to `providers` (their fake-model), one priority group each, in
    order: ``make_alias("smart", first, second, is_default_for_chats=True)``."""

    def make(name: str, *providers: Provider, **fields: object) -> Alias:
        alias = Alias.objects.create(name=name, **fields)
        for priority, provider in enumerate(providers, start=1):
            AliasTarget.objects.create(
                alias=alias, priority=priority, provider=provider, model="fake-model"
            )
        return alias

    return make


def send_hello(
    user,
    provider: Provider,
    text: str = "Hello",
    *,
    conversation: Conversation | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Message:
    """The pending answer of a message sent through the service (queued on commit)."""
    sent = services.send_message(
        user=user,
        conversation=conversation,
        text=text,
        provider=provider,
        model="",
        temperature=temperature,
        max_tokens=max_tokens,
    )
    return sent.assistant_message


def expected_text(tokens: int, seed: int = 0, first: int | None = None) -> str:
    """The fake upstream's answer of `tokens` tokens, or its `first` tokens."""
    return "".join(Knobs(tokens=tokens, seed=seed).text_tokens()[:first])


def expected_thought(tokens: int, seed: int = 0) -> str:
    """The fake upstream's reasoning of `tokens` tokens (the `think` knob)."""
    return "".join(Knobs(think=tokens, seed=seed).thought_tokens())


@pytest.fixture
def huey_consumer() -> Iterator[Consumer]:
    """A real consumer (threads, like the embedded deployment), not immediate mode."""
    from huey.contrib.djhuey import HUEY

    HUEY.storage.flush_queue()
    consumer = create_consumer(
        workers=2,
        periodic=False,
        # Whatever the storage class, do not let polling backoff slow the tests.
        initial_delay=0.005,
        backoff=1.0,
        max_delay=0.005,
        check_worker_health=False,
    )
    start_consumer(consumer)
    yield consumer
    stop_consumer(consumer)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def relay_backend(request) -> Iterator[str]:
    """Runs a test once on the in-process relay and once on Redis Streams."""
    url = REDIS_TEST_URL if request.param == "redis" else ""
    with override_settings(REDIS_URL=url):
        relay_module._relays.pop(url, None)  # a fresh relay per test
        yield request.param


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    comment: bool = False


@dataclass
class SSEResult:
    status: int
    headers: dict[str, str]
    events: list[SSEEvent] = field(default_factory=list)
    raw: str = ""
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each delta
    timed_out: bool = False

    @property
    def deltas(self) -> list[SSEEvent]:
        return [e for e in self.events if e.event == "delta"]

    @property
    def text(self) -> str:
        return "".join(html.unescape(e.data) for e in self.deltas)

    @property
    def thoughts(self) -> list[SSEEvent]:
        return [e for e in self.events if e.event == "reasoning"]

    @property
    def reasoning(self) -> str:
        return "".join(html.unescape(e.data) for e in self.thoughts)

    @property
    def done(self) -> SSEEvent | None:
        return next((e for e in self.events if e.event == "done"), None)


def parse_block(block: str) -> SSEEvent:
    event = SSEEvent()
    data: list[str] = []
    for line in block.split("\n"):
        if line.startswith(":"):
            event.comment = True
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event.event = value
        elif name == "id":
            event.id = value
    event.data = "\n".join(data)
    return event


async def _read(
    client: AsyncClient,
    url: str,
    headers: dict[str, str],
    max_deltas: int | None,
    limit: float,
    min_chars: int | None = None,
    on_delta: Callable[[SSEResult], Awaitable[None]] | None = None,
) -> SSEResult:
    response = await client.get(url, headers=headers)
    result = SSEResult(response.status_code, dict(response.headers.items()))
    if not getattr(response, "streaming", False):
        result.raw = response.content.decode()
        return result
    buffer = ""
    iterator = aiter(response.streaming_content)  # type: ignore[attr-defined]  # a StreamingHttpResponse
    try:
        async with asyncio.timeout(limit) as deadline:
            async for chunk in iterator:
                text = chunk.decode() if isinstance(chunk, bytes) else chunk
                result.raw += text
                buffer += text
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    event = parse_block(block)
                    result.events.append(event)
                    if event.event == "delta":
                        result.arrivals.append(time.monotonic())
                        if on_delta is not None:
                            await on_delta(result)
                    if max_deltas is not None and len(result.deltas) >= max_deltas:
                        return result
                    if min_chars is not None and len(result.reasoning + result.text) >= min_chars:
                        return result
    except TimeoutError:
        if not deadline.expired():
            raise
        result.timed_out = True
    finally:
        # Stop reading like a browser closing the tab.
        await iterator.aclose()
    return result


@pytest.fixture
def read_sse(client, user) -> Callable[..., SSEResult]:
    """Log in and read an SSE stream to its end (or for `max_deltas` delta events)."""
    client.force_login(user)
    cookies = client.cookies

    def read(
        url: str,
        *,
        last_event_id: str | None = None,
        max_deltas: int | None = None,
        as_user=None,
        limit: float = 15.0,
        headers: dict[str, str] | None = None,
        min_chars: int | None = None,
        on_delta: Callable[[SSEResult], Awaitable[None]] | None = None,
    ) -> SSEResult:
        """`min_chars`: stop once that much text (reasoning and answer) came (deltas may
        merge, so a count of them is no measure); `on_delta`: awaited after each delta,
        while the stream stays open."""
        async_client = AsyncClient()
        if as_user is not None:
            async_client.force_login(as_user)
        else:
            async_client.cookies = cookies
        headers = dict(headers or {})
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return async_to_sync(_read)(
            async_client, url, headers, max_deltas, limit, min_chars, on_delta
        )

    return read
