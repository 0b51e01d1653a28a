"""Each assistant message shows what it cost, from its usage records."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import Conversation, Message
from providers.adapters.base import Attempt, GenerationResult, Usage
from usage.services import record_generation

pytestmark = pytest.mark.django_db


def _answered(user, provider, *attempts: Attempt) -> Message:
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    message = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        provider=provider,
        model="fake-model",
        status="complete",
        content="answer",
        input_tokens=1000,
        output_tokens=500,
    )
    result = GenerationResult(text="answer", model="fake-model", attempts=list(attempts))
    record_generation(provider=provider, user=user, source="chat", result=result, message=message)
    return message


def _page(client, message: Message) -> str:
    return client.get(
        reverse("generation:conversation", args=[message.conversation_id])
    ).content.decode()


def test_a_priced_answer_shows_the_cost_of_all_its_attempts(
    client, user, make_chat_provider, price_fake_model
):
    provider = make_chat_provider()
    price_fake_model(provider)
    retried = Attempt(number=1, outcome="rate_limit", status_code=429)
    ok = Attempt(number=2, outcome="ok", usage=Usage(input_tokens=1000, output_tokens=500))
    message = _answered(user, provider, retried, ok)
    client.force_login(user)
    # 1000 in at $2/M + 500 out at $8/M = $0.002 + $0.004
    assert "$0.0060" in _page(client, message)
    assert Message.objects.with_cost().get(pk=message.pk).cost == "$0.0060"


def test_an_unpriced_model_says_the_cost_is_unknown_not_zero(client, user, make_chat_provider):
    provider = make_chat_provider()
    ok = Attempt(number=1, outcome="ok", usage=Usage(input_tokens=10, output_tokens=5))
    message = _answered(user, provider, ok)
    client.force_login(user)
    page = _page(client, message)
    assert "cost unknown" in page
    assert "$0.0000" not in page


def test_the_streams_final_bubble_shows_the_cost_in_two_plain_queries(user, make_chat_provider):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from generation.stream_views import _final_html

    provider = make_chat_provider()
    ok = Attempt(number=1, outcome="ok", usage=Usage(input_tokens=10, output_tokens=5))
    message = _answered(user, provider, ok)
    with CaptureQueriesContext(connection) as queries:
        saved, html = _final_html(message.pk)
    assert saved.content == "answer"
    assert "cost unknown" in html
    # The message, then its usage rows: no grouped join (the costliest query to compile).
    assert len(queries) == 2
    assert all("GROUP BY" not in query["sql"] for query in queries.captured_queries)
