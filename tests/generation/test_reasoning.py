"""Reasoning in the chat: stored with its timing and signatures, relayed and resumed in
one offset space with the answer (both relays), sent back on the next turn, the chat's
thinking setting and a preset's thinking flag, and hostile reasoning kept as text."""

from __future__ import annotations

import asyncio
import html
import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from generation import services
from generation.models import Conversation, Message
from generation.presets import Preset
from generation.relay import RelayEvent, get_relay
from generation.rendering import frames_after
from generation.runner import _Generation
from providers.adapters.base import ChatMessage, GenerationRequest
from providers.cache import response_key
from providers.fake_upstream.wire import REDACTED_DATA, fake_signature
from tests.generation.conftest import (
    expected_text,
    expected_thought,
    parse_block,
    send_hello,
    wait_for,
)
from tests.generation.gateway_helpers import *  # noqa: F403 (the /v1 fixtures)
from tests.generation.test_runner import CountingRelay
from tests.generation.test_security import HOSTILE, _assert_harmless

HX = {"HX-Request": "true"}


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _stream_url(message: Message) -> str:
    return reverse("generation:stream", args=[message.pk])


def _generation_bodies(fake_upstream) -> list[dict]:
    paths = {"/v1/chat/completions", "/v1/messages"}
    return [r.body for r in fake_upstream.requests if r.path in paths]


def _thinking_chat(user, provider, budget: int = 2048) -> Conversation:
    return Conversation.objects.create(
        owner=user, provider=provider, thinking_enabled=True, thinking_budget=budget
    )


# --- the runner ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_runner_stores_the_reasoning_and_how_long_it_thought(user, make_chat_provider):
    provider = make_chat_provider("think=6&tokens=4&delay=20", kind="deepseek")
    pk = send_hello(user, provider).pk
    Message.objects.filter(pk=pk).update(status=Message.Status.STREAMING)
    message = Message.objects.select_related("provider", "conversation__owner").get(pk=pk)
    relay = CountingRelay()

    _Generation(message, relay).run()

    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert message.reasoning == expected_thought(6)
    assert message.content == expected_text(4)
    # DeepSeek's reasoning never goes back: nothing beyond its text is kept.
    assert message.reasoning_parts is None
    assert message.reasoning_started_at <= message.reasoning_ended_at <= message.finished_at
    assert message.thought_seconds == 1  # a tenth of a second, shown as at least 1 s
    # One offset space: the reasoning first, then the answer, each event where the one
    # before it ended, each saying which of the two it belongs to.
    events = relay.published
    assert [event.reasoning for event in events] == [True] * 6 + [False] * 4
    assert [event.start for event in events] == [0, *(event.id for event in events[:-1])]
    assert events[-1].id == message.stream_offset == len(message.reasoning + message.content)
    # Reasoning is metered as output, and reported reasoning tokens are recorded.
    from usage.models import UsageRecord

    record = UsageRecord.objects.get(message=message)
    assert (record.reasoning_tokens, record.output_tokens) == (6, 10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_a_stop_mid_thought_keeps_the_reasoning_and_its_time(
    user, make_chat_provider, huey_consumer, read_sse
):
    provider = make_chat_provider("think=40&delay=10&fault=stall&after=5", kind="deepseek")
    message = send_hello(user, provider)
    first = read_sse(_stream_url(message), min_chars=len(expected_thought(5)))
    assert first.reasoning == expected_thought(5)

    services.cancel_message(message=message)

    message = _final(message)
    assert message.status == Message.Status.CANCELLED
    assert message.reasoning == expected_thought(5)
    assert message.content == ""
    assert message.thought_seconds is not None
    page = render_thread(user, message)
    assert "Thought for" in page
    assert expected_thought(5).split()[-1] in page


def render_thread(user, message: Message) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    response = client.get(reverse("generation:conversation", args=[message.conversation_id]))
    assert response.status_code == 200
    return response.content.decode().split('id="thread"')[1].split("</section>")[0]


# --- SSE: replay and resume in one offset space ----------------------------------------------


def test_frames_after_an_offset_in_either_part():
    def texts(frames: list[bytes]) -> list[tuple[str, str, str | None]]:
        events = [parse_block(frame.decode().strip()) for frame in frames]
        return [(e.event, e.data, e.id) for e in events]

    reasoning, content = "thinking", "answer"
    frames, cursor = frames_after(reasoning=reasoning, content=content, after=0)
    assert texts(frames) == [("reasoning", "thinking", "8"), ("delta", "answer", "14")]
    assert cursor == 14
    frames, cursor = frames_after(reasoning=reasoning, content=content, after=5)
    assert texts(frames) == [("reasoning", "ing", "8"), ("delta", "answer", "14")]
    frames, cursor = frames_after(reasoning=reasoning, content=content, after=10)
    assert texts(frames) == [("delta", "swer", "14")]
    # Ahead of the database (the relay is faster than the saves): nothing, no repeat.
    frames, cursor = frames_after(reasoning="thin", content="", after=7)
    assert (frames, cursor) == ([], 7)
    # Model output stays text.
    frames, _ = frames_after(reasoning="<script>x</script>", content="", after=0)
    assert texts(frames) == [("reasoning", "&lt;script&gt;x&lt;/script&gt;", "18")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_resume_mid_thought_gives_the_rest_exactly_once(
    user, make_chat_provider, huey_consumer, read_sse
):
    provider = make_chat_provider("think=30&tokens=10&delay=15", kind="deepseek")
    message = send_hello(user, provider)
    url = _stream_url(message)

    # A tab closed mid-thought...
    first = read_sse(url, min_chars=len(expected_thought(4)))
    assert first.thoughts
    assert not first.deltas
    assert len(first.reasoning) < len(expected_thought(30))
    # ...the browser reconnecting with Last-Event-ID...
    resumed = read_sse(url, last_event_id=first.thoughts[-1].id)
    assert first.reasoning + resumed.reasoning == expected_thought(30)
    assert resumed.text == expected_text(10)
    ids = [int(e.id) for e in first.thoughts + resumed.thoughts + resumed.deltas]
    assert ids == sorted(set(ids)), "ids increase strictly across reasoning and answer"
    assert ids[-1] == len(expected_thought(30) + expected_text(10))
    # ...and a page loaded later, at any offset, the rest from the database.
    message = _final(message)
    for after in (0, 7, len(expected_thought(30)), len(expected_thought(30)) + 3):
        later = read_sse(f"{url}?after={after}")
        whole = expected_thought(30) + expected_text(10)
        assert later.reasoning + later.text == whole[after:]
        assert later.done is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_a_page_loaded_mid_thought_shows_the_reasoning_so_far_and_follows_on(
    client, user, make_chat_provider, huey_consumer, read_sse
):
    provider = make_chat_provider("think=60&tokens=5&delay=15", kind="deepseek")
    message = send_hello(user, provider)
    saved = wait_for(
        lambda: (
            Message.objects.filter(pk=message.pk, content="")
            .exclude(reasoning="")
            .values_list("reasoning", flat=True)
            .first()
        )
    )
    assert isinstance(saved, str)

    page = render_thread(user, message)

    shown = html.unescape(page.split('class="reasoning__text plain">')[1].split("</div>")[0])
    assert expected_thought(60).startswith(shown)
    assert len(shown) >= len(saved)
    assert "Thinking…" in page
    after = int(page.split('data-after="')[1].split('"')[0])
    assert after == len(shown)
    rest = read_sse(f"{_stream_url(message)}?after={after}")
    assert shown + rest.reasoning == expected_thought(60)
    assert rest.text == expected_text(5)
    assert "Thought for" in rest.done.data


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_a_hole_across_the_boundary_is_filled_from_the_database(user, read_sse):
    conversation = Conversation.objects.create(owner=user)
    message = Message.objects.create(
        conversation=conversation,
        role="assistant",
        status=Message.Status.STREAMING,
        reasoning="abc",
        model="fake-model",
    )

    def worker() -> None:
        time.sleep(0.1)
        relay = get_relay()
        # The relay lost "def" (reasoning) and "X" (answer); it has "YZ" only.
        relay.publish(message.relay_key, RelayEvent(9, "YZ"))
        try:
            Message.objects.filter(pk=message.pk).update(
                reasoning="abcdef", content="XYZ", status="complete"
            )
        finally:
            connection.close()
        relay.complete(message.relay_key)

    threading.Thread(target=worker).start()
    sse = read_sse(f"{_stream_url(message)}?after=1")

    assert sse.reasoning == "bcdef"
    assert sse.text == "XYZ"
    ids = [int(e.id) for e in sse.thoughts + sse.deltas]
    assert ids == sorted(set(ids))


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_both_relays_carry_reasoning_apart_from_the_answer(kind, settings):
    from tests.generation.conftest import REDIS_TEST_URL

    if kind == "redis":
        from generation.relay_redis import RedisRelay

        relay = RedisRelay(REDIS_TEST_URL)
    else:
        from generation.relay_memory import InProcessRelay

        relay = InProcessRelay()
    key = uuid.uuid4().hex
    for event in (
        RelayEvent(3, "hmm", reasoning=True),
        RelayEvent(6, " so", reasoning=True),
        RelayEvent(8, "Hi", reasoning=False),
        RelayEvent(11, " yo"),
    ):
        relay.publish(key, event)
    relay.complete(key)

    async def follow(after: int) -> list[RelayEvent | None]:
        async with asyncio.timeout(5):
            return [event async for event in relay.follow(key, after=after, idle=1)]

    # A reader that fell behind gets one event per part: never text merged across.
    assert asyncio.run(follow(0)) == [
        RelayEvent(6, "hmm so", reasoning=True),
        RelayEvent(11, "Hi yo"),
    ]
    assert asyncio.run(follow(4)) == [
        RelayEvent(6, " so", reasoning=True),
        RelayEvent(11, "Hi yo"),
    ]


# --- the next turn, thinking settings, presets -------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_the_next_turn_sends_the_signed_thinking_back(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("think=5&tokens=3&redacted=1", kind="anthropic")
    conversation = _thinking_chat(user, provider, budget=2048)

    first = _final(send_hello(user, provider, "First", conversation=conversation))

    assert first.status == Message.Status.COMPLETE, first.error_text
    assert first.thinking_budget == 2048
    assert first.reasoning == expected_thought(5)
    signature = fake_signature(expected_thought(5))
    assert first.reasoning_parts == [
        {"text": "", "redacted": REDACTED_DATA},
        {"text": expected_thought(5), "signature": signature},
    ]
    assert first.reasoning_redacted
    assert first.output_tokens == 8  # Anthropic's output includes its thinking

    conversation.refresh_from_db()
    second = _final(send_hello(user, provider, "Second", conversation=conversation))

    assert second.status == Message.Status.COMPLETE, second.error_text  # signature checked
    before, after = _generation_bodies(fake_upstream)
    assert before["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert before["max_tokens"] == 2048 + 4096
    assert after["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "redacted_thinking", "data": REDACTED_DATA},
            {"type": "thinking", "thinking": expected_thought(5), "signature": signature},
            {"type": "text", "text": expected_text(3)},
        ],
    }
    page = render_thread(user, second)
    assert "redacted" in page
    assert page.count("Thought for") == 2


@pytest.mark.django_db(transaction=True)
def test_deepseek_reasoning_is_shown_but_never_sent_back(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("think=3&tokens=2", kind="deepseek")
    first = _final(send_hello(user, provider, "First"))
    conversation = Conversation.objects.get(pk=first.conversation_id)
    _final(send_hello(user, provider, "Second", conversation=conversation))

    _, after = _generation_bodies(fake_upstream)
    assert after["messages"][1] == {"role": "assistant", "content": expected_text(2)}
    assert "thinking" not in after


@pytest.mark.django_db
def test_thinking_is_set_from_the_header_and_checked(client, user, make_chat_provider):
    provider = make_chat_provider(kind="anthropic")
    conversation = Conversation.objects.create(owner=user, provider=provider)
    client.force_login(user)
    url = reverse("generation:thinking", args=[conversation.pk])
    page = client.get(reverse("generation:conversation", args=[conversation.pk])).content.decode()
    assert 'id="thinking-setting"' in page
    assert "Thinking off" in page

    saved = client.post(url, {"thinking": "on", "budget": "3000"}, headers=HX)

    assert saved.status_code == 200
    assert "Saved. It applies from the next message." in saved.content.decode()
    assert "Thinking on · 3000 tokens" in saved.content.decode()
    conversation.refresh_from_db()
    assert (conversation.thinking_enabled, conversation.thinking_budget) == (True, 3000)

    for budget in ("100", "99999", "lots"):
        refused = client.post(url, {"thinking": "", "budget": budget}, headers=HX)
        body = refused.content.decode()
        assert refused.status_code == 200
        assert 'role="alert"' in body
        assert "between 1024 and 32000" in body or "whole number" in body
        # What was typed is kept in the form; nothing was saved.
        assert f'value="{budget}"' in body
        conversation.refresh_from_db()
        assert (conversation.thinking_enabled, conversation.thinking_budget) == (True, 3000)

    off = client.post(url, {"budget": "3000"}, headers=HX)
    assert "Thinking off" in off.content.decode()
    conversation.refresh_from_db()
    assert conversation.thinking_enabled is False


@pytest.mark.django_db
def test_the_thinking_control_is_only_for_providers_that_take_a_budget(
    client, user, other_user, make_chat_provider
):
    deepseek = make_chat_provider(kind="deepseek")
    conversation = Conversation.objects.create(owner=user, provider=deepseek)
    client.force_login(user)
    page = client.get(reverse("generation:conversation", args=[conversation.pk])).content.decode()
    assert 'id="thinking-setting" hidden' in page  # a placeholder, no control
    assert "Think before answering" not in page
    url = reverse("generation:thinking", args=[conversation.pk])
    assert client.post(url, {"thinking": "on", "budget": "2048"}).status_code == 400
    conversation.refresh_from_db()
    assert conversation.thinking_enabled is False
    # Another user's chat is not found.
    anthropic = make_chat_provider(kind="anthropic")
    theirs = Conversation.objects.create(owner=other_user, provider=anthropic)
    theirs_url = reverse("generation:thinking", args=[theirs.pk])
    assert client.post(theirs_url, {"thinking": "on", "budget": "2048"}).status_code == 404
    assert client.get(theirs_url).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_send_that_changes_the_provider_offers_thinking_or_takes_it_away(
    client, user, make_chat_provider, huey_consumer
):
    deepseek = make_chat_provider("tokens=1", kind="deepseek")
    anthropic = make_chat_provider("tokens=1", kind="anthropic")
    client.force_login(user)
    send = reverse("generation:send")

    first = client.post(send, {"text": "Hi", "provider": deepseek.pk}, headers=HX)
    conversation = Conversation.objects.get(owner=user)
    to_anthropic = client.post(
        send, {"text": "Hi", "provider": anthropic.pk, "conversation": conversation.pk}, headers=HX
    )

    assert '<div id="thinking-setting" hidden hx-swap-oob="true">' in first.content.decode()
    offered = to_anthropic.content.decode()
    assert '<div id="thinking-setting" class="thinking-setting" hx-swap-oob="true">' in offered
    assert "Think before answering" in offered
    for answer in Message.objects.filter(role="assistant"):
        _final(answer)


@pytest.mark.django_db(transaction=True)
def test_a_preset_with_thinking_turns_it_on_for_the_chat(
    client, user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("think=2&tokens=2", kind="anthropic")
    thinking = Preset.objects.create(owner=user, name="Deep", provider=provider, thinking=True)
    plain = Preset.objects.create(owner=user, name="Quick", provider=provider)
    client.force_login(user)

    for preset in (thinking, plain):
        data = {"text": "Hello", "provider": provider.pk, "model": "", "preset": preset.pk}
        assert client.post(reverse("generation:send"), data, headers=HX).status_code == 200

    deep, quick = (Conversation.objects.get(preset=p) for p in (thinking, plain))
    assert deep.thinking_enabled
    assert not quick.thinking_enabled
    for answer in Message.objects.filter(role="assistant"):
        _final(answer)
    # Two workers: the bodies arrive in either order, so each is told apart by its own.
    bodies = _generation_bodies(fake_upstream)
    assert len(bodies) == 2
    with_thinking = [body for body in bodies if "thinking" in body]
    assert [body["thinking"] for body in with_thinking] == [
        {"type": "enabled", "budget_tokens": 4096}
    ]
    answer = deep.messages.get(role="assistant")
    assert answer.reasoning == expected_thought(2)
    page = client.get(reverse("generation:conversation", args=[deep.pk])).content.decode()
    assert "Thinking on · 4096 tokens" in page


@pytest.mark.django_db(transaction=True)
def test_a_chats_thinking_budget_is_held_against_the_users_budget(
    user, make_chat_provider, give_budget
):
    from usage.budgets import worst_case_nanos
    from usage.models import Reservation

    give_budget(user)
    provider = make_chat_provider(kind="anthropic")
    conversation = _thinking_chat(user, provider, budget=2048)

    message = send_hello(user, provider, conversation=conversation, max_tokens=100)

    held = Reservation.objects.get(pk=message.reservation_id).amount_nanos
    request = GenerationRequest.from_json(Message.objects.get(pk=message.pk).request)
    assert request.thinking_budget == 2048
    from usage.budgets import prompt_tokens_to_hold

    expected = worst_case_nanos(
        provider=provider,
        model="fake-model",
        max_tokens=100 + 2048,
        prompt_tokens=prompt_tokens_to_hold(request),
        at=timezone.now(),
    )
    assert held == expected


# --- hostile reasoning ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_hostile_reasoning_stays_text_streamed_and_rendered(
    user, make_chat_provider, huey_consumer, read_sse
):
    # The response cache replays this through the real task path.
    provider = make_chat_provider(kind="deepseek", cache_responses=True)
    request = GenerationRequest(
        model="fake-model",
        messages=(ChatMessage.of_text("user", "Think"),),
        temperature=0.0,
        cache_scope=str(user.pk),
    )
    cache.set(
        response_key(provider, request),
        {
            "text": "Fine.",
            "model": "fake-model",
            "finish_reason": "stop",
            "reasoning": [{"text": HOSTILE}],
        },
    )
    message = send_hello(user, provider, "Think", temperature=0)

    sse = read_sse(_stream_url(message))

    assert sse.reasoning == HOSTILE  # every character arrives, as text
    assert sse.text == "Fine."
    for event in sse.thoughts:
        assert "<" not in event.data
    assert [e.event for e in sse.events if not e.comment].count("done") == 1
    _assert_harmless(sse.done.data)
    assert "Thought for" in sse.done.data
    _final(message)
    _assert_harmless(render_thread(user, message))


# --- the API paths: reasoning passes through, not exposed yet ---------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_v1_gateway_streams_the_answer_of_a_reasoning_model_without_its_thinking(
    gateway_url, api_token, make_provider
):
    import openai

    from tests.generation.gateway_helpers import model_of, user_says

    provider = make_provider("deepseek", knobs="think=5&tokens=4")
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=api_token[1], max_retries=0)

    chunks = list(
        client.chat.completions.create(
            model=model_of(provider),
            messages=user_says(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    whole = client.chat.completions.create(model=model_of(provider), messages=user_says())
    client.close()

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text(4)  # the thinking is skipped (issue 16 exposes it)
    assert chunks[-1].usage.completion_tokens == 9  # and billed as output
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 5
    assert whole.choices[0].message.content == expected_text(4)


@pytest.mark.django_db
def test_api_generate_answers_a_reasoning_model_with_its_text(client, fake_upstream, user):
    from generation.api_tokens import ApiToken
    from tests.providers.fake_helpers import fake_provider
    from usage.models import UsageRecord

    _, raw = ApiToken.issue(user=user, name="script")
    provider = fake_provider(fake_upstream, "deepseek", knobs="think=3&tokens=2")
    response = client.post(
        "/api/generate",
        {"provider_id": str(provider.pk), "prompt": "Hi"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 200, response.content
    assert response.json()["data"]["text"] == expected_text(2)
    record = UsageRecord.objects.get()
    assert (record.output_tokens, record.reasoning_tokens) == (5, 3)
