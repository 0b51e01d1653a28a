"""A system prompt per conversation: set from the chat header (or with a new chat's first
message), sent upstream in each provider kind's own way, from the next message on."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from generation import services
from generation.models import Conversation, Message
from providers.errors import ErrorKind
from tests.generation.conftest import send_hello, wait_for
from tests.generation.test_views import SURROGATE, _utf7_form_post

HX = {"HX-Request": "true"}


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _edit_url(conversation: Conversation) -> str:
    return reverse("generation:system_prompt", args=[conversation.pk])


def _generation_bodies(fake_upstream) -> list[dict]:
    paths = {"/v1/chat/completions", "/v1/messages"}
    return [r.body for r in fake_upstream.requests if r.path in paths]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_openai_kind_gets_it_as_the_system_message_from_the_next_message_on(
    client, user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3")
    first = _final(send_hello(user, provider, "First"))
    conversation = Conversation.objects.get(pk=first.conversation_id)
    client.force_login(user)

    saved = client.post(_edit_url(conversation), {"system_prompt": "Answer like a pirate."})

    assert saved.status_code == 200
    assert "Saved" in saved.content.decode()
    conversation.refresh_from_db()  # as the send view loads it
    second = _final(send_hello(user, provider, "Second", conversation=conversation))
    assert (first.status, second.status) == ("complete", "complete")
    before, after = _generation_bodies(fake_upstream)
    # The answer already given was not sent it; the next one is.
    assert before["messages"][0] == {"role": "user", "content": "First"}
    assert after["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert [m["role"] for m in after["messages"][1:]] == ["user", "assistant", "user"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("relay_backend")
def test_anthropic_kind_gets_it_as_the_system_parameter(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3", kind="anthropic")
    provider.base_url = fake_upstream.anthropic_base_url("tokens=3")
    provider.save()
    conversation = Conversation.objects.create(owner=user, system_prompt="Be terse.")

    answer = _final(send_hello(user, provider, "Hi", conversation=conversation))

    assert answer.status == Message.Status.COMPLETE
    (body,) = _generation_bodies(fake_upstream)
    # The chat marks both for Anthropic's prompt cache too (the provider's default).
    ephemeral = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "Be terse.", "cache_control": ephemeral}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": ephemeral}]}
    ]


# --- Without a worker: the request the send stores is what the worker will make. ----


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _send(client, provider, **extra):
    data = {"text": "Hello", "provider": provider.pk, "model": "", "conversation": ""}
    data.update(extra)
    return client.post(reverse("generation:send"), data, headers=HX)


@pytest.mark.django_db
def test_a_new_chat_takes_its_system_prompt_with_the_first_message(
    logged_in, user, make_chat_provider
):
    provider = make_chat_provider()
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'name="system_prompt"' in page

    response = _send(logged_in, provider, system_prompt="You review code.")

    assert response.status_code == 200
    conversation = Conversation.objects.get(owner=user)
    assert conversation.system_prompt == "You review code."
    answer = conversation.messages.get(role="assistant")
    assert answer.request["system"] == "You review code."
    # The header now edits the conversation's own prompt, and says one is set.
    body = response.content.decode()
    assert _edit_url(conversation) in body
    assert "System prompt set" in body


@pytest.mark.django_db
def test_the_header_shows_and_edits_the_prompt_in_place(logged_in, user):
    conversation = Conversation.objects.create(owner=user, title="t")
    page = logged_in.get(reverse("generation:conversation", args=[conversation.pk]))
    assert _edit_url(conversation) in page.content.decode()
    assert "System prompt set" not in page.content.decode()

    saved = logged_in.post(_edit_url(conversation), {"system_prompt": "Be <kind>."}, headers=HX)

    body = saved.content.decode()
    assert saved.status_code == 200
    assert 'id="system-prompt"' in body
    assert "Saved. It applies from the next message." in body
    assert "Be &lt;kind&gt;." in body
    assert "System prompt set" in body
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be <kind>."

    cleared = logged_in.post(_edit_url(conversation), {"system_prompt": ""}, headers=HX)
    assert "System prompt set" not in cleared.content.decode()
    conversation.refresh_from_db()
    assert conversation.system_prompt == ""


@pytest.mark.django_db
def test_a_retry_is_sent_with_the_prompt_of_now(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    conversation = Conversation.objects.create(owner=user, system_prompt="Old")
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    failed = Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        provider=provider,
        model="fake-model",
        status="failed",
        error_kind=ErrorKind.RATE_LIMIT,
    )
    logged_in.post(_edit_url(conversation), {"system_prompt": "New"})

    fresh = services.retry_message(message=Message.objects.get(pk=failed.pk))

    assert fresh.request["system"] == "New"
    assert services.build_request(message=fresh).system == "New"


@pytest.mark.django_db
@override_settings(SWITCHBOARD={"MAX_SYSTEM_PROMPT_CHARS": 10})
def test_a_too_long_prompt_is_refused_in_words_and_kept_in_the_box(
    logged_in, user, make_chat_provider
):
    conversation = Conversation.objects.create(owner=user, system_prompt="Short")

    response = logged_in.post(_edit_url(conversation), {"system_prompt": "x" * 11}, headers=HX)

    body = response.content.decode()
    assert response.status_code == 200
    assert "A system prompt is at most 10 characters (this one has 11)." in body
    assert "x" * 11 in body, "what was typed is not lost"
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Short"

    provider = make_chat_provider()
    sent = _send(logged_in, provider, system_prompt="y" * 11)
    assert sent["HX-Retarget"] == "#composer-error"
    assert "A system prompt is at most 10 characters" in sent.content.decode()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_unencodable_prompt_is_refused_in_words(logged_in, user, make_chat_provider):
    conversation = Conversation.objects.create(owner=user, system_prompt="Kept")

    response = _utf7_form_post(logged_in, _edit_url(conversation), {"system_prompt": SURROGATE})

    body = response.content.decode()
    assert response.status_code == 200
    assert "cannot be sent" in body
    assert "hi \ufffd there" in body, "the rest of what was typed is kept"
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Kept"

    provider = make_chat_provider()
    values = {"text": "Hello", "provider": str(provider.pk), "system_prompt": SURROGATE}
    sent = _utf7_form_post(logged_in, reverse("generation:send"), values)
    assert "cannot be sent" in sent.content.decode()
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_another_users_prompt_is_404_and_untouched(client, user, other_user):
    theirs = Conversation.objects.create(owner=other_user, system_prompt="Secret")
    client.force_login(user)

    response = client.post(_edit_url(theirs), {"system_prompt": "Mine now"})

    assert response.status_code == 404
    assert client.get(_edit_url(theirs)).status_code in {404, 405}
    theirs.refresh_from_db()
    assert theirs.system_prompt == "Secret"


@pytest.mark.django_db
def test_editing_needs_the_csrf_token(user):
    conversation = Conversation.objects.create(owner=user)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    response = csrf_client.post(_edit_url(conversation), {"system_prompt": "x"})

    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.system_prompt == ""
