"""Chat messages sent to an alias, answered by a real huey worker: the fallback before
the first token, none after it, the "answered by" label, and every attempt metered with
its own target and the alias."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from generation.models import Conversation, Message
from generation.runner import run_generation
from tests.generation.conftest import expected_text, wait_for
from tests.providers.fake_helpers import generation_calls
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

HX = {"HX-Request": "true"}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _send(client, alias, provider, *, conversation="", text="Hello", **extra):
    # As the composer posts it: the alias picked, and the provider and model below it.
    data = {
        "text": text,
        "alias": alias.pk if alias is not None else "",
        "provider": provider.pk,
        "model": "",
        "conversation": conversation,
        **extra,
    }
    response = client.post(reverse("generation:send"), data, headers=HX)
    assert response.status_code == 200
    assert "HX-Retarget" not in response, response.content.decode()
    return Message.objects.filter(role="assistant").latest("pk")


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.select_related("provider", "alias").get(pk=message.pk)


def _records(answer: Message, count: int) -> list[tuple]:
    """The answer's usage records, once `count` are there: the worker meters an answer
    just after it saves its end (all its attempts in one write)."""
    records = UsageRecord.objects.filter(message=answer).order_by("attempt_number")
    wait_for(lambda: records.count() >= count)
    return [(r.provider, r.model, r.outcome, r.alias, r.source) for r in records]


@pytest.fixture(
    params=[
        ("refused", "network"),
        ("fault=429&retry_after=0", "rate_limit"),
        ("fault=500", "provider_error"),
        # A 200 whose stream ends cleanly before any text or finish (a proxy closing it).
        ("fault=end", "network"),
        ("fault=garbage", "provider_error"),  # a 200 streaming an event that is not JSON
    ],
    ids=["connection-refused", "429", "500", "ended-unfinished", "not-json"],
)
def failing_first(request, make_chat_provider):
    """A first target that fails before any text, and the outcome its attempt records."""
    knobs, outcome = request.param
    if knobs == "refused":
        return request.getfixturevalue("refused_provider"), outcome
    return make_chat_provider(knobs, name="Failing"), outcome


def test_a_failing_first_target_is_answered_by_the_second(
    logged_in, failing_first, make_chat_provider, make_alias, huey_consumer, read_sse
):
    first, outcome = failing_first
    second = make_chat_provider("tokens=5", name="Second")
    alias = make_alias("smart", first, second)
    answer = _send(logged_in, alias, first)
    assert answer.alias == alias

    sse = read_sse(reverse("generation:stream", args=[answer.pk]))

    assert sse.text == expected_text(5)
    assert sse.done is not None
    assert "answered by Second/fake-model via smart" in sse.done.data
    answer = _final(answer)
    assert answer.status == Message.Status.COMPLETE
    assert answer.content == expected_text(5)
    assert (answer.provider, answer.model, answer.alias) == (second, "fake-model", alias)
    assert _records(answer, 2) == [
        (first, "fake-model", outcome, "smart", "chat"),
        (second, "fake-model", "ok", "smart", "chat"),
    ]
    ok = UsageRecord.objects.get(message=answer, outcome="ok")
    assert (ok.input_tokens, ok.output_tokens) == (answer.input_tokens, answer.output_tokens)
    assert ok.attempt_number == 2
    # The chat remembers the alias: the composer picks it again, the thread says who answered.
    page = logged_in.get(reverse("generation:conversation", args=[answer.conversation_id]))
    body = page.content.decode()
    assert f'<option value="{alias.pk}" selected>' in body
    assert "answered by Second/fake-model via smart" in body
    assert Conversation.objects.get().alias == alias
    # The targets' keys stay out of the new places: the label, the picker, the stream.
    for shown in (body, sse.raw):
        assert "sk-test-0123456789" not in shown


def test_a_partial_answer_cut_after_the_first_token_is_not_retried_elsewhere(
    logged_in, make_chat_provider, make_alias, huey_consumer, fake_upstream
):
    dropping = make_chat_provider("fault=drop&after=1&tokens=5", name="Dropping")
    spare = make_chat_provider(name="Spare")
    alias = make_alias("smart", dropping, spare)

    answer = _final(_send(logged_in, alias, dropping))

    assert answer.status == Message.Status.FAILED
    assert answer.error_kind == "network"
    assert answer.content == expected_text(5, first=1)  # the partial answer is kept
    assert answer.provider == dropping
    assert _records(answer, 1) == [(dropping, "fake-model", "network", "smart", "chat")]
    assert generation_calls(fake_upstream) == 1  # the spare was never asked
    page = logged_in.get(reverse("generation:conversation", args=[answer.conversation_id]))
    assert "answered by Dropping/fake-model via smart" in page.content.decode()


def test_a_stopped_alias_answer_meters_every_attempt(
    logged_in, make_chat_provider, make_alias, huey_consumer
):
    failing = make_chat_provider("fault=500", name="Failing")
    slow = make_chat_provider("tokens=400&delay=20", name="Slow")
    answer = _send(logged_in, make_alias("smart", failing, slow), failing)
    wait_for(lambda: Message.objects.get(pk=answer.pk).content)

    logged_in.post(reverse("generation:cancel", args=[answer.pk]), headers=HX)

    answer = _final(answer)
    assert answer.status == Message.Status.CANCELLED
    assert answer.provider == slow
    assert _records(answer, 2) == [
        (failing, "fake-model", "provider_error", "smart", "chat"),
        (slow, "fake-model", "cancelled", "smart", "chat"),
    ]
    assert UsageRecord.objects.get(outcome="cancelled").output_tokens > 0  # estimated


FAST_RETRIES = {**settings.SWITCHBOARD, "RETRY_BASE_DELAY_SECONDS": 0.01}


@override_settings(SWITCHBOARD=FAST_RETRIES)
def test_retry_regenerate_and_edit_of_an_alias_answer_use_the_alias_again(
    logged_in, make_chat_provider, make_alias, huey_consumer
):
    failing = make_chat_provider("fault=500", name="Failing")
    broken = make_chat_provider("fault=503", name="Second")
    alias = make_alias("smart", failing, broken)
    first = _final(_send(logged_in, alias, failing))
    assert first.status == Message.Status.FAILED
    assert first.retryable
    # The second target comes back: a retry goes through the alias again.
    broken.base_url = make_chat_provider("tokens=4").base_url
    broken.save()

    logged_in.post(reverse("generation:retry", args=[first.pk]), headers=HX)
    retried = _final(Message.objects.get(retry_of=first))
    assert (retried.alias, retried.provider, retried.status) == (alias, broken, "complete")

    logged_in.post(reverse("generation:regenerate", args=[retried.pk]), headers=HX)
    regenerated = _final(Message.objects.filter(role="assistant").latest("pk"))
    assert (regenerated.alias, regenerated.provider) == (alias, broken)

    question = regenerated.parent
    edit_data = {"text": "Hello again", "alias": alias.pk, "provider": failing.pk, "model": ""}
    logged_in.post(reverse("generation:edit", args=[question.pk]), edit_data, headers=HX)
    edited = _final(Message.objects.filter(role="assistant").latest("pk"))
    assert edited.parent.content == "Hello again"
    assert (edited.alias, edited.provider, edited.status) == (alias, broken, "complete")

    # Another model picked for a new version: answered by it, without the alias.
    other = make_chat_provider("tokens=3", name="Other")
    data = {"provider": other.pk, "model": "fake-model"}
    logged_in.post(reverse("generation:regenerate", args=[edited.pk]), data, headers=HX)
    direct = _final(Message.objects.filter(role="assistant").latest("pk"))
    assert (direct.alias, direct.provider, direct.status) == (None, other, "complete")
    assert Conversation.objects.get().alias is None
    page = logged_in.get(reverse("generation:conversation", args=[direct.conversation_id]))
    assert "via smart" not in page.content.decode()  # the branch shown has no alias answer


def test_an_alias_switched_off_before_the_worker_starts_fails_in_words(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    alias = make_alias("smart", provider)
    answer = _send(logged_in, alias, provider)  # queued: no consumer runs it
    HUEY.storage.flush_queue()
    alias.is_active = False
    alias.save()

    run_generation(message_id=answer.pk)

    answer = _final(answer)
    assert answer.status == Message.Status.FAILED
    assert "no longer available" in answer.error_text
    assert answer.route_label == ""  # no target was tried
    assert not UsageRecord.objects.exists()


def test_an_alias_whose_targets_all_refuse_the_request_fails_in_words(
    logged_in, make_chat_provider, make_alias
):
    provider = make_chat_provider()
    alias = make_alias("smart", provider)
    answer = _send(logged_in, alias, provider)  # queued: no consumer runs it
    HUEY.storage.flush_queue()
    # Staff point the target at a model its provider does not have, meanwhile.
    alias.targets.update(model="no-such-model")

    run_generation(message_id=answer.pk)

    answer = _final(answer)
    assert answer.status == Message.Status.FAILED
    assert "has no model named 'no-such-model'" in answer.error_text
    assert answer.route_label == ""  # no target was asked
    assert not UsageRecord.objects.exists()
