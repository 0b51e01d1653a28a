"""The chat page and its HTMX endpoints, without a worker (the queue is inspected)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from generation import services
from generation.models import Conversation, Message
from providers.errors import ErrorKind

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    HUEY.storage.flush_queue()
    return client


def _send(client, provider, *, conversation="", text="Hello", **extra):
    data = {"text": text, "provider": provider.pk, "model": "", "conversation": conversation}
    data.update(extra)
    return client.post(reverse("generation:send"), data, headers=HX)


def test_empty_page_offers_providers_and_composer(logged_in, make_chat_provider):
    provider = make_chat_provider(name="Demo (local)")
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'id="composer"' in page
    assert f'value="{provider.pk}"' in page
    assert "Demo (local)" in page
    assert "Start a conversation" in page
    assert "django_htmx/htmx-2.min.js" in page
    assert "js/chat.js" in page


def test_page_without_providers_says_so(logged_in):
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'id="composer"' not in page
    assert "No provider is available yet" in page


def test_send_stores_two_messages_and_enqueues_after_commit(
    logged_in, user, make_chat_provider, django_capture_on_commit_callbacks
):
    provider = make_chat_provider()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _send(logged_in, provider, temperature="0", max_tokens="50")

    assert response.status_code == 200
    conversation = Conversation.objects.get(owner=user)
    assert response["HX-Push-Url"] == reverse("generation:conversation", args=[conversation.pk])
    question, answer = conversation.messages.all()
    assert (question.role, question.content) == ("user", "Hello")
    assert answer.status == Message.Status.PENDING
    assert answer.temperature == 0.0  # 0 stays 0, it is not "the default"
    assert answer.max_tokens == 50
    assert answer.model == "fake-model"
    assert len(callbacks) == 1
    assert HUEY.pending_count() == 1
    task = HUEY.pending()[0]
    assert task.args == (answer.pk,)  # the id only: no prompt text in the queue
    body = response.content.decode()
    assert f'data-stream-url="/m/{answer.pk}/stream/"' in body
    assert 'hx-swap-oob="true"' in body


def test_send_over_budget_is_refused_in_words(logged_in, user, make_chat_provider):
    from usage.models import UsageRecord, UserBudget

    UserBudget.objects.create(user=user, monthly_limit="1.00")
    response = _send(logged_in, make_chat_provider())  # fake-model has no price
    assert response["HX-Retarget"] == "#composer-error"
    assert "monthly budget" in response.content.decode()
    assert not Message.objects.exists()
    assert UsageRecord.objects.get().outcome == "over_budget"


def test_cancelling_a_pending_message_releases_its_budget_hold(
    logged_in, user, give_budget, make_chat_provider
):
    from usage.models import Reservation

    give_budget(user)
    _send(logged_in, make_chat_provider())
    answer = Message.objects.get(role="assistant")
    assert Reservation.objects.get(pk=answer.reservation_id).status == "active"
    logged_in.post(reverse("generation:cancel", args=[answer.pk]), headers=HX)
    assert Reservation.objects.get(pk=answer.reservation_id).status == "released"


def test_blank_parameters_mean_provider_defaults(logged_in, make_chat_provider):
    _send(logged_in, make_chat_provider(), temperature="", max_tokens="")
    answer = Message.objects.get(role="assistant")
    assert answer.temperature is None
    assert answer.max_tokens is None


def test_invalid_send_shows_an_inline_error(logged_in, make_chat_provider):
    provider = make_chat_provider()
    for extra, words in (
        ({"text": "   "}, "Write a message first."),
        ({"temperature": "7"}, "less than or equal to 2"),
        ({"max_tokens": "999999"}, "less than or equal to"),
    ):
        response = _send(logged_in, provider, **extra)
        assert response.status_code == 200
        assert response["HX-Retarget"] == "#composer-error"
        assert words in response.content.decode()
    assert not Message.objects.exists()


# A multipart form post may name any charset Python knows, and Django decodes its fields
# with it. UTF-7 carries a lone surrogate: text that no database or provider can take.
SURROGATE = "hi \ud800 there"


def _utf7_form_post(client, url: str, values: dict[str, str]):
    boundary = "sb-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in values.items()
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"  # the client encodes it in UTF-7
    content_type = f"multipart/form-data; boundary={boundary}; charset=utf-7"
    return client.post(url, body, content_type=content_type, headers=HX)


@pytest.mark.parametrize("field", ["text", "model"])
def test_unencodable_text_is_refused_in_words(logged_in, make_chat_provider, field):
    provider = make_chat_provider()
    values = {"text": "Hello", "provider": str(provider.pk), "model": ""}
    values[field] = SURROGATE
    response = _utf7_form_post(logged_in, reverse("generation:send"), values)
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#composer-error"
    assert "cannot be sent" in response.content.decode()
    assert not Message.objects.exists()


def test_an_unencodable_title_is_not_stored(logged_in, user):
    conversation = Conversation.objects.create(owner=user, title="Old")
    url = reverse("generation:rename", args=[conversation.pk])
    response = _utf7_form_post(logged_in, url, {"title": SURROGATE})
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.title == "Old"


def test_following_message_goes_to_the_same_conversation(logged_in, user, make_chat_provider):
    provider = make_chat_provider()
    _send(logged_in, provider)
    conversation = Conversation.objects.get()
    response = _send(logged_in, provider, conversation=str(conversation.pk), text="More")
    assert "HX-Push-Url" not in response
    assert conversation.messages.count() == 4


@pytest.mark.parametrize("raw", ["\u00b2", "9" * 5000, "-1", "1e3"])
def test_a_malformed_conversation_id_is_a_400_not_a_crash(logged_in, make_chat_provider, raw):
    assert _send(logged_in, make_chat_provider(), conversation=raw).status_code == 400
    assert not Message.objects.exists()


@pytest.mark.parametrize("after", ["\u00b2", "9" * 5000])
def test_a_malformed_resume_offset_replays_from_the_start(user, read_sse, after):
    conversation = Conversation.objects.create(owner=user)
    answer = Message.objects.create(
        conversation=conversation, role="assistant", status="complete", content="All of it."
    )
    result = read_sse(reverse("generation:stream", args=[answer.pk]) + f"?after={after}")
    assert result.status == 200
    assert result.text == "All of it."


def test_list_is_newest_first_and_rename_and_delete(logged_in, user):
    old = Conversation.objects.create(owner=user, title="Old chat")
    new = Conversation.objects.create(owner=user, title="New chat here")
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert page.index("New chat here") < page.index("Old chat")

    form = logged_in.get(reverse("generation:rename", args=[old.pk]), headers=HX)
    assert 'name="title"' in form.content.decode()
    renamed = logged_in.post(
        reverse("generation:rename", args=[old.pk]), {"title": " Renamed "}, headers=HX
    )
    assert "Renamed" in renamed.content.decode()
    old.refresh_from_db()
    assert old.title == "Renamed"

    # The form posts as a plain form too (Enter before htmx bound it, or no script): the
    # chat is renamed and the browser lands back on it.
    plain = logged_in.post(reverse("generation:rename", args=[old.pk]), {"title": "Plainly"})
    assert plain.status_code == 302
    assert plain["Location"] == reverse("generation:conversation", args=[old.pk])
    old.refresh_from_db()
    assert old.title == "Plainly"

    headers = {**HX, "HX-Current-URL": "http://testserver" + reverse("generation:index")}
    gone = logged_in.post(reverse("generation:delete", args=[new.pk]), headers=headers)
    assert gone.status_code == 200
    assert "HX-Redirect" not in gone
    assert not Conversation.objects.filter(pk=new.pk).exists()
    here = reverse("generation:conversation", args=[old.pk])
    headers = {**HX, "HX-Current-URL": "http://testserver" + here}
    gone = logged_in.post(reverse("generation:delete", args=[old.pk]), headers=headers)
    assert gone["HX-Redirect"] == reverse("generation:index")


def _finished(user, provider, **fields) -> Message:
    conversation = Conversation.objects.create(owner=user, title="t")
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        provider=provider,
        model="fake-model",
        **fields,
    )


def test_failed_message_shows_words_and_retry_only_when_retryable(
    logged_in, user, make_chat_provider
):
    provider = make_chat_provider()
    auth = _finished(user, provider, status="failed", error_kind=ErrorKind.AUTH, content="")
    page = logged_in.get(reverse("generation:conversation", args=[auth.conversation_id]))
    body = page.content.decode()
    assert "The provider rejected the API key. Ask an administrator to update it." in body
    assert "Retry" not in body

    busy = _finished(user, provider, status="failed", error_kind=ErrorKind.RATE_LIMIT, content="so")
    page = logged_in.get(reverse("generation:conversation", args=[busy.conversation_id]))
    assert "Retry" in page.content.decode()
    retried = logged_in.post(reverse("generation:retry", args=[busy.pk]), headers=HX)
    body = retried.content.decode()
    fresh = Message.objects.get(retry_of=busy)
    assert fresh.status == Message.Status.PENDING
    assert f'data-stream-url="/m/{fresh.pk}/stream/"' in body
    assert body.count(">Retry<") == 0, "the old answer loses its retry button"
    assert services.build_request(message=fresh).messages[-1].text == "q"


def test_complete_message_shows_markdown_model_and_tokens(logged_in, user, make_chat_provider):
    message = _finished(
        user,
        make_chat_provider(),
        status="complete",
        content="**bold** answer",
        input_tokens=12,
        output_tokens=34,
    )
    body = logged_in.get(reverse("generation:conversation", args=[message.conversation_id]))
    html = body.content.decode()
    assert "<strong>bold</strong> answer" in html
    assert "fake-model" in html
    assert "12 in" in html
    assert "34 out" in html
    assert 'data-slot="cost"' in html


def test_cancel_a_pending_message(logged_in, user, make_chat_provider):
    message = _finished(user, make_chat_provider(), status="pending")
    response = logged_in.post(reverse("generation:cancel", args=[message.pk]), headers=HX)
    assert response.status_code == 204
    message.refresh_from_db()
    assert message.status == Message.Status.CANCELLED


def test_model_picker_lists_the_providers_models(logged_in, make_chat_provider):
    provider = make_chat_provider()
    url = reverse("generation:model_options") + f"?provider={provider.pk}"
    body = logged_in.get(url).content.decode()
    assert '<option value="fake-model" selected>' in body
    assert "fake-model-large" in body
    assert logged_in.get(reverse("generation:model_options") + "?provider=x").status_code == 400


@pytest.mark.django_db(transaction=True)
@override_settings(SWITCHBOARD={"SSE_HEARTBEAT_SECONDS": 0.05, "MAX_TOKENS_CAP": 8192})
def test_stream_sends_heartbeats_while_waiting(user, make_chat_provider, read_sse):
    message = _finished(user, make_chat_provider(), status="pending")
    sse = read_sse(reverse("generation:stream", args=[message.pk]), limit=0.4)
    assert sse.timed_out
    assert sse.raw.count(": keep-alive") >= 3
    assert sse.deltas == []


def test_the_chat_links_my_usage_and_the_admin_only_for_staff(logged_in, user):
    page = logged_in.get(reverse("generation:index")).content.decode()
    assert 'href="/usage/"' in page
    assert 'href="/admin/"' not in page
    user.is_staff = True
    user.save()
    assert 'href="/admin/"' in logged_in.get(reverse("generation:index")).content.decode()
    assert logged_in.get("/usage/").status_code == 200


def test_the_open_chat_is_listed_even_past_the_lists_length(logged_in, user):
    # A message sent in it moves its list entry to the top: that entry must be on the page.
    Conversation.objects.bulk_create(Conversation(owner=user) for _ in range(201))
    oldest = Conversation.objects.filter(owner=user).last()
    page = logged_in.get(reverse("generation:conversation", args=[oldest.pk])).content.decode()
    assert page.count(f'id="conversation-{oldest.pk}"') == 1
    assert page.count('<li class="conversation') == 201
