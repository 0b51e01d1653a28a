"""Edit, regenerate, versions: the chat's messages form a tree and the chat shows one
branch of it. Through the views, with a real huey consumer where answers must be written,
the provider's side read from what the fake upstream received."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from django.apps import apps as django_apps
from django.test import Client
from django.urls import reverse

from generation import services
from generation.models import Conversation, Message
from providers.adapters.base import GenerationRequest
from tests.generation.conftest import expected_text, send_hello, wait_for
from usage.models import UsageRecord

HX = {"HX-Request": "true"}
worker = pytest.mark.django_db(transaction=True)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _newest_answer() -> Message:
    return Message.objects.filter(role="assistant").latest("id")


def _send(client, provider, text: str, conversation: Conversation | None = None) -> Message:
    """Send from the composer and wait for the answer to end."""
    data = {"text": text, "provider": provider.pk, "model": "", "conversation": ""}
    if conversation is not None:
        data["conversation"] = conversation.pk
    assert client.post(reverse("generation:send"), data, headers=HX).status_code == 200
    return _final(_newest_answer())


def _text(content) -> str:
    # Plain text, or a list of typed parts: the text parts.
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def _last_turns(fake_upstream) -> list[tuple[str, str]]:
    """The dialogue of the last generation request the provider received."""
    paths = ("/v1/chat/completions", "/v1/messages")
    body = [r.body for r in fake_upstream.requests if r.path in paths][-1]
    turns = [(m["role"], _text(m["content"])) for m in body["messages"]]
    return [turn for turn in turns if turn[0] != "system"]


def _generation_calls(fake_upstream) -> int:
    return sum(r.path != "/v1/models" for r in fake_upstream.requests)


def _shown_ids(html: str) -> list[int]:
    """The messages a thread shows, in order."""
    return [int(pk) for pk in re.findall(r'<article class="message[^"]*" id="message-(\d+)"', html)]


def _page(client, conversation_id: int) -> str:
    response = client.get(reverse("generation:conversation", args=[conversation_id]))
    assert response.status_code == 200
    return response.content.decode()


def _switcher(html: str, message_id: int) -> str:
    """The "n/m" a message's switcher shows, or "" when it has none."""
    found = re.search(
        rf'id="versions-{message_id}".*?class="versions__count">([^<]*)<', html, re.DOTALL
    )
    return found.group(1) if found else ""


def _edit(client, question: Message, text: str, provider, **fields):
    data = {"text": text, "provider": provider.pk, "model": "", **fields}
    return client.post(reverse("generation:edit", args=[question.pk]), data, headers=HX)


def _show(client, message: Message, headers=HX):
    return client.post(reverse("generation:show_version", args=[message.pk]), headers=headers)


@worker
def test_an_edit_branches_and_is_answered_with_exactly_the_active_branch(
    logged_in, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3")
    a1 = _send(logged_in, provider, "First question")
    conversation = a1.conversation
    a2 = _send(logged_in, provider, "Second question", conversation)
    q1, q2 = a1.parent, a2.parent
    assert (q2.parent_id, a2.parent_id) == (a1.pk, q2.pk)

    response = _edit(logged_in, q2, "Second question, rephrased", provider)

    assert response.status_code == 200
    body = response.content.decode()
    edited = Message.objects.get(content="Second question, rephrased")
    answer = _newest_answer()
    assert (edited.parent_id, answer.parent_id) == (a1.pk, edited.pk), "a version beside q2"
    assert _shown_ids(body) == [q1.pk, a1.pk, edited.pk, answer.pk]
    assert _switcher(body, edited.pk) == "2/2"
    assert f'data-stream-url="/m/{answer.pk}/stream/"' in body, "the new answer streams"
    assert _final(answer).status == Message.Status.COMPLETE
    # The provider was asked with the active branch: nothing of the old version.
    assert _last_turns(fake_upstream) == [
        ("user", "First question"),
        ("assistant", expected_text(3)),
        ("user", "Second question, rephrased"),
    ]
    # Nothing went: the old version, its answer and every attempt's usage record stay.
    assert Message.objects.filter(pk__in=[q2.pk, a2.pk]).count() == 2
    records = wait_for(lambda: UsageRecord.objects.filter(message__isnull=False).count() == 3)
    assert records
    assert set(UsageRecord.objects.values_list("message_id", flat=True)) == {
        a1.pk,
        a2.pk,
        answer.pk,
    }
    # A reload shows the same branch.
    page = _page(logged_in, conversation.pk)
    assert _shown_ids(page) == [q1.pk, a1.pk, edited.pk, answer.pk]
    assert "Second question, rephrased" in page
    assert ">Second question<" not in page


@worker
def test_editing_the_first_message_starts_the_chat_again(
    logged_in, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3")
    a1 = _send(logged_in, provider, "Hello")
    _send(logged_in, provider, "And then?", a1.conversation)

    _edit(logged_in, a1.parent, "Hi there", provider)

    answer = _final(_newest_answer())
    assert answer.status == Message.Status.COMPLETE
    assert _last_turns(fake_upstream) == [("user", "Hi there")]
    assert Message.objects.get(content="Hi there").parent_id is None
    page = _page(logged_in, a1.conversation_id)
    assert _shown_ids(page) == [answer.parent_id, answer.pk]
    assert _switcher(page, answer.parent_id) == "2/2"


@worker
def test_switching_versions_shows_the_other_branch_and_calls_nobody(
    logged_in, make_chat_provider, huey_consumer, fake_upstream
):
    provider = make_chat_provider("tokens=3")
    a1 = _send(logged_in, provider, "First question")
    conversation = a1.conversation
    a2 = _send(logged_in, provider, "Second question", conversation)
    q2 = a2.parent
    _edit(logged_in, q2, "Second question, rephrased", provider)
    edited_answer = _final(_newest_answer())
    wait_for(lambda: UsageRecord.objects.count() == 3)
    calls, records = _generation_calls(fake_upstream), UsageRecord.objects.count()

    response = _show(logged_in, q2)

    body = response.content.decode()
    assert _shown_ids(body) == [a1.parent_id, a1.pk, q2.pk, a2.pk]
    assert _switcher(body, q2.pk) == "1/2"
    assert "rephrased" not in body
    assert _generation_calls(fake_upstream) == calls, "no upstream call"
    assert UsageRecord.objects.count() == records, "nothing metered"
    assert Message.objects.count() == 6
    assert _shown_ids(_page(logged_in, conversation.pk)) == [a1.parent_id, a1.pk, q2.pk, a2.pk]

    # The chat goes on from the version shown.
    a3 = _send(logged_in, provider, "Third question", conversation)
    assert a3.parent.parent_id == a2.pk
    assert _last_turns(fake_upstream) == [
        ("user", "First question"),
        ("assistant", expected_text(3)),
        ("user", "Second question"),
        ("assistant", expected_text(3)),
        ("user", "Third question"),
    ]
    # Over to the edit and back: the old version comes back where it was left (its
    # newest branch, down to the third question), without a plain page's script either.
    _show(logged_in, edited_answer.parent)
    plain = _show(logged_in, q2, headers={})
    assert plain.status_code == 302
    assert plain["Location"] == reverse("generation:conversation", args=[conversation.pk])
    page = _page(logged_in, conversation.pk)
    assert _shown_ids(page)[-2:] == [a3.parent_id, a3.pk]
    assert _switcher(page, q2.pk) == "1/2"


@worker
def test_regenerating_with_another_provider_and_model_meters_a_new_record_and_keeps_the_old(
    logged_in, make_chat_provider, huey_consumer, fake_upstream
):
    first = make_chat_provider("tokens=3", name="Fake OpenAI")
    other = make_chat_provider(kind="anthropic", name="Fake Anthropic")
    other.base_url = fake_upstream.anthropic_base_url("tokens=5")
    other.save()
    answer = _send(logged_in, first, "Hello")
    wait_for(lambda: UsageRecord.objects.count() == 1)

    # The picker offers the composer's choices, the answer's own preselected.
    picker = logged_in.get(reverse("generation:regenerate", args=[answer.pk])).content.decode()
    assert "Fake OpenAI" in picker
    assert "Fake Anthropic" in picker
    assert re.search(rf'value="{first.pk}" selected', picker)

    data = {"provider": other.pk, "model": "fake-model-large"}
    response = logged_in.post(reverse("generation:regenerate", args=[answer.pk]), data, headers=HX)

    fresh = _newest_answer()
    body = response.content.decode()
    assert _shown_ids(body) == [answer.parent_id, fresh.pk]
    assert _switcher(body, fresh.pk) == "2/2"
    fresh = _final(fresh)
    assert fresh.status == Message.Status.COMPLETE
    assert (fresh.provider_id, fresh.model) == (other.pk, "fake-model-large")
    assert fresh.content == expected_text(5)
    last = [r for r in fake_upstream.requests if r.path != "/v1/models"][-1]
    assert (last.path, last.body["model"]) == ("/v1/messages", "fake-model-large")
    assert _last_turns(fake_upstream) == [("user", "Hello")]
    wait_for(lambda: UsageRecord.objects.count() == 2)
    old_record = UsageRecord.objects.get(message=answer)
    new_record = UsageRecord.objects.get(message=fresh)
    assert (old_record.provider_id, old_record.model) == (first.pk, "fake-model")
    assert (new_record.provider_id, new_record.model) == (other.pk, "fake-model-large")
    assert Message.objects.get(pk=answer.pk).content == expected_text(3), "the old one stays"

    # Regenerate as it is: the same provider and model again, a third version.
    logged_in.post(reverse("generation:regenerate", args=[fresh.pk]), headers=HX)
    third = _final(_newest_answer())
    assert (third.provider_id, third.model, third.parent_id) == (
        other.pk,
        "fake-model-large",
        answer.parent_id,
    )
    page = _page(logged_in, answer.conversation_id)
    assert _switcher(page, third.pk) == "3/3"
    # The composer now offers the provider last used.
    assert re.search(rf'value="{other.pk}" selected', page)
    back = _show(logged_in, answer).content.decode()
    assert _shown_ids(back) == [answer.parent_id, answer.pk]
    assert _switcher(back, answer.pk) == "1/3"


@pytest.mark.django_db
def test_regenerating_an_earlier_answer_branches_there(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    first = send_hello(user, provider, "One")
    second = send_hello(user, provider, "Two", conversation=first.conversation)
    Message.objects.filter(pk__in=[first.pk, second.pk]).update(status="complete", content="ok")

    response = logged_in.post(reverse("generation:regenerate", args=[first.pk]), headers=HX)

    fresh = _newest_answer()
    assert _shown_ids(response.content.decode()) == [first.parent_id, fresh.pk]
    # The request the worker will make (stored at send time): up to the first question.
    assert _turns_of(fresh) == [("user", "One")]
    # Regenerate is refused in words while an answer is being written.
    refused = logged_in.post(reverse("generation:regenerate", args=[fresh.pk]), headers=HX)
    assert refused["HX-Retarget"] == "#composer-error"
    assert "still being written" in refused.content.decode()


@worker
def test_stop_resume_retry_and_delete_on_a_branch(
    logged_in, user, read_sse, make_chat_provider, huey_consumer, fake_upstream
):
    fast = make_chat_provider("tokens=3")
    slow = make_chat_provider("tokens=400&delay=20", name="Slow")
    a1 = _send(logged_in, fast, "Question")
    conversation = a1.conversation
    _edit(logged_in, a1.parent, "Question, edited", slow)
    answer = _newest_answer()
    stream = reverse("generation:stream", args=[answer.pk])

    # Stop it while it streams, then resume the stream after what was seen.
    first = read_sse(stream, min_chars=len(expected_text(400, first=3)))
    assert not first.timed_out
    stopped = logged_in.post(reverse("generation:cancel", args=[answer.pk]), headers=HX)
    assert stopped.status_code == 204
    # An upper bound only (the stop takes well under a second): a loaded CI machine with
    # PostgreSQL and Redis once needed more than 5 s.
    rest = read_sse(stream, last_event_id=first.deltas[-1].id, limit=15)
    assert not rest.timed_out
    answer = _final(answer)
    assert answer.status == Message.Status.CANCELLED
    assert first.text + rest.text == answer.content
    assert "Stopped" in rest.done.data

    # The provider is back to full speed; the stopped answer's button writes a new version.
    slow.base_url = fake_upstream.openai_base_url("tokens=4")
    slow.save()
    response = logged_in.post(reverse("generation:retry", args=[answer.pk]), headers=HX)
    retried = _newest_answer()
    assert (retried.parent_id, retried.retry_of_id) == (answer.parent_id, answer.pk)
    assert _switcher(response.content.decode(), retried.pk) == "2/2"
    assert _final(retried).content == expected_text(4)
    assert _last_turns(fake_upstream) == [("user", "Question, edited")]
    # The stopped version is one switch away, its retry button gone (it was retried).
    back = _show(logged_in, answer).content.decode()
    assert _shown_ids(back)[-1] == answer.pk
    assert "btn--small retry" not in back
    assert "btn--small regenerate" in back

    # Every attempt was metered on its own answer; deleting the chat keeps the records.
    wait_for(lambda: UsageRecord.objects.count() == 3)
    assert logged_in.post(reverse("generation:delete", args=[conversation.pk])).status_code == 302
    assert not Message.objects.exists()
    assert UsageRecord.objects.count() == 3
    assert not UsageRecord.objects.filter(message__isnull=False).exists()


@pytest.mark.django_db
def test_a_retry_of_a_failed_answer_is_a_version_beside_it(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    failed = send_hello(user, provider, "Question")
    Message.objects.filter(pk=failed.pk).update(status="failed", error_kind="rate_limit")
    page = _page(logged_in, failed.conversation_id)
    assert ">Retry<" in page

    response = logged_in.post(reverse("generation:retry", args=[failed.pk]), headers=HX)

    fresh = Message.objects.get(retry_of=failed)
    body = response.content.decode()
    assert _shown_ids(body) == [failed.parent_id, fresh.pk]
    assert _switcher(body, fresh.pk) == "2/2"
    again = logged_in.post(reverse("generation:retry", args=[failed.pk]), headers=HX)
    assert "cannot be retried" in again.content.decode()
    assert Message.objects.filter(role="assistant").count() == 2


@pytest.mark.django_db
def test_a_bad_edit_is_refused_in_words_and_saves_nothing(logged_in, user, make_chat_provider):
    from usage.models import UserBudget

    provider = make_chat_provider()
    answer = send_hello(user, provider, "Question")
    question = answer.parent
    form = logged_in.get(reverse("generation:edit", args=[question.pk])).content.decode()
    assert ">Question</textarea>" in form

    blank = _edit(logged_in, question, "   ", provider)
    assert blank["HX-Retarget"] == f"#message-{question.pk}"
    assert "Write a message first." in blank.content.decode()

    UserBudget.objects.create(user=user, monthly_limit="1.00")  # fake-model has no price
    refused = _edit(logged_in, question, "Question <b>again</b>", provider)
    body = refused.content.decode()
    assert "monthly budget" in body
    assert "Question &lt;b&gt;again&lt;/b&gt;</textarea>" in body, "the text as typed, escaped"
    assert Message.objects.count() == 2
    assert UsageRecord.objects.get().outcome == "over_budget"

    provider.is_active = False
    provider.save()
    gone = logged_in.post(
        reverse("generation:regenerate", args=[answer.pk]), {"provider": provider.pk}, headers=HX
    )
    assert gone["HX-Retarget"] == "#composer-error"
    assert "no longer available" in gone.content.decode()
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_a_plain_edit_answers_with_the_chats_provider(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    answer = send_hello(user, provider, "Question")
    # Posted without the composer's fields (no script): the chat's provider and model.
    response = logged_in.post(
        reverse("generation:edit", args=[answer.parent_id]), {"text": "Question?"}
    )
    assert response.status_code == 302
    fresh = _newest_answer()
    assert (fresh.provider_id, fresh.model, fresh.parent.content) == (
        provider.pk,
        "fake-model",
        "Question?",
    )


@pytest.mark.django_db
def test_another_users_messages_are_404_for_every_version_action(
    client, user, other_user, make_chat_provider
):
    answer = send_hello(other_user, make_chat_provider(), "Their question")
    question = answer.parent
    client.force_login(user)

    for message in (question, answer):
        assert client.get(reverse("generation:message", args=[message.pk])).status_code == 404
        assert _show(client, message).status_code == 404
    assert client.get(reverse("generation:edit", args=[question.pk])).status_code == 404
    assert _edit(client, question, "Mine now", answer.provider).status_code == 404
    assert client.get(reverse("generation:regenerate", args=[answer.pk])).status_code == 404
    regenerate = client.post(reverse("generation:regenerate", args=[answer.pk]), headers=HX)
    assert regenerate.status_code == 404
    assert Message.objects.count() == 2
    assert Conversation.objects.get().current_leaf_id == answer.pk


@pytest.mark.django_db
def test_version_actions_need_a_csrf_token(user, make_chat_provider):
    provider = make_chat_provider()
    answer = send_hello(user, provider, "Question")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)

    posts = {
        reverse("generation:edit", args=[answer.parent_id]): {"text": "x"},
        reverse("generation:regenerate", args=[answer.pk]): {},
        reverse("generation:show_version", args=[answer.parent_id]): {},
    }
    for url, data in posts.items():
        assert csrf_client.post(url, data).status_code == 403, url
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_the_export_holds_the_active_branch(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    first = send_hello(user, provider, "One")
    second = send_hello(user, provider, "Two", conversation=first.conversation)
    services.edit_message(
        question=second.parent,
        text="Two, again",
        provider=provider,
        model="",
        temperature=None,
        max_tokens=None,
    )
    url = reverse("generation:export_json", args=[first.conversation_id])
    data = json.loads(logged_in.get(url).content)
    users = [m["content"] for m in data["messages"] if m["role"] == "user"]
    assert users == ["One", "Two, again"]
    assert len(data["messages"]) == 4


@pytest.mark.django_db
def test_the_data_migration_keeps_an_existing_linear_conversation_as_it_was(
    logged_in, user, make_chat_provider
):
    migration = importlib.import_module("generation.migrations.0009_link_messages_in_order")
    provider = make_chat_provider()
    old = Conversation.objects.create(owner=user, title="From before")
    rows = [
        ("user", "complete", "One", None),
        ("assistant", "failed", "", None),
        ("assistant", "complete", "Answer one", "retry"),
        ("user", "complete", "Two", None),
        ("assistant", "complete", "Answer two", None),
    ]
    made: list[Message] = []
    for role, status, content, retry in rows:
        made.append(
            Message.objects.create(
                conversation=old,
                role=role,
                status=status,
                content=content,
                error_kind="rate_limit" if status == "failed" else "",
                provider=provider if role == "assistant" else None,
                model="fake-model",
                retry_of=made[-1] if retry else None,
            )
        )
    updated_at = Conversation.objects.get(pk=old.pk).updated_at
    newer = send_hello(user, provider, "A chat made since")  # already a tree

    migration.link_messages_in_order(django_apps, None)

    parents = [Message.objects.get(pk=m.pk).parent_id for m in made]
    assert parents == [None, *[m.pk for m in made[:-1]]]
    old.refresh_from_db()
    assert old.current_leaf_id == made[-1].pk
    assert old.updated_at == updated_at, "the chat keeps its place in the list"
    page = _page(logged_in, old.pk)
    assert _shown_ids(page) == [m.pk for m in made], "the same messages in the same order"
    assert "versions__count" not in page
    # The next message is asked with the whole chat, as before (the failed answer aside).
    sent = send_hello(user, provider, "Three", conversation=old)
    assert _turns_of(sent) == [
        ("user", "One"),
        ("assistant", "Answer one"),
        ("user", "Two"),
        ("assistant", "Answer two"),
        ("user", "Three"),
    ]
    newer = Message.objects.get(pk=newer.pk)
    assert newer.parent.parent_id is None
    assert newer.conversation.current_leaf_id == newer.pk


def _turns_of(answer: Message) -> list[tuple[str, str]]:
    """The (role, text) turns of the request an answer will make, as stored at send time."""
    assert answer.request is not None
    request = GenerationRequest.from_json(answer.request)
    return [(turn.role, turn.text) for turn in request.messages]
