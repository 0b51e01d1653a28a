"""The whole path with a real huey consumer, on both relay backends."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generation import services
from generation.models import Conversation, Message
from generation.tasks import generate_message, sweep_messages
from providers.errors import ErrorKind
from tests.generation.conftest import expected_text, send_hello, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("relay_backend")]


def _send(user, provider, text="Hello there", **params) -> Message:
    return send_hello(user, provider, text, **params)


def _final(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _stream_url(message: Message) -> str:
    return reverse("generation:stream", args=[message.pk])


def test_message_streams_to_completion(
    user, give_budget, make_chat_provider, huey_consumer, read_sse
):
    give_budget(user)
    provider = make_chat_provider("tokens=15&delay=2")
    message = _send(user, provider)

    sse = read_sse(_stream_url(message))

    assert sse.status == 200
    assert sse.headers["Content-Type"].startswith("text/event-stream")
    assert sse.headers["Cache-Control"] == "no-cache"
    assert sse.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in sse.headers
    ids = [int(e.id) for e in sse.deltas]
    assert ids == sorted(set(ids)), "event ids increase strictly"
    assert sse.text == expected_text(15)
    assert ids[-1] == len(expected_text(15)), "the last id is the text length"
    assert sse.done is not None
    assert sse.events[-1] is sse.done
    message = _final(message)
    assert message.status == Message.Status.COMPLETE
    assert message.content == expected_text(15)
    assert message.finish_reason
    assert message.output_tokens
    assert message.input_tokens
    assert "<p>" in sse.done.data
    assert f"{message.output_tokens} out" in sse.done.data
    # Metered once, and the budget hold taken at send time is settled.
    from usage.models import Reservation, UsageRecord

    record = UsageRecord.objects.get(message=message)
    assert (record.outcome, record.output_tokens) == ("ok", message.output_tokens)
    assert Reservation.objects.get(pk=message.reservation_id).status == "settled"


def test_resume_with_last_event_id_gives_exact_remainder(
    user, make_chat_provider, huey_consumer, read_sse, fake_upstream
):
    provider = make_chat_provider("tokens=30&delay=5")
    message = _send(user, provider)

    first = read_sse(_stream_url(message), max_deltas=5)
    assert len(first.deltas) == 5
    resumed = read_sse(_stream_url(message), last_event_id=first.deltas[-1].id)

    assert first.text + resumed.text == expected_text(30)
    assert int(resumed.deltas[0].id) > int(first.deltas[-1].id)
    assert resumed.done is not None
    # After completion a reconnect sends only the final message: no text, no new run.
    _final(message)
    calls = fake_upstream.calls
    again = read_sse(_stream_url(message), last_event_id=resumed.deltas[-1].id)
    assert again.deltas == []
    assert again.done is not None
    assert fake_upstream.calls == calls


def test_client_disconnect_does_not_stop_generation(
    user, make_chat_provider, huey_consumer, read_sse
):
    provider = make_chat_provider("tokens=20&delay=5")
    message = _send(user, provider)

    read_sse(_stream_url(message), max_deltas=2)  # closes after two deltas

    message = _final(message)
    assert message.status == Message.Status.COMPLETE
    assert message.content == expected_text(20)


def test_cancel_keeps_partial_text(user, make_chat_provider, huey_consumer, read_sse):
    provider = make_chat_provider("tokens=400&delay=20")
    message = _send(user, provider)
    first = read_sse(_stream_url(message), min_chars=len(expected_text(400, first=3)))
    assert not first.timed_out

    services.cancel_message(message=message)
    rest = read_sse(_stream_url(message), last_event_id=first.deltas[-1].id, limit=15)
    assert not rest.timed_out

    message = _final(message)
    assert message.status == Message.Status.CANCELLED
    assert message.content.startswith(first.text)
    assert 0 < len(message.content) < len(expected_text(400))
    assert first.text + rest.text == message.content
    assert rest.done is not None
    assert "Stopped" in rest.done.data


def test_fault_mid_stream_fails_with_text_so_far(user, make_chat_provider, huey_consumer):
    provider = make_chat_provider("tokens=10&fault=error&after=4")
    message = _final(_send(user, provider))

    assert message.status == Message.Status.FAILED
    assert message.content == expected_text(10)[: len(expected_text(4))]
    assert message.error_kind in {ErrorKind.PROVIDER_ERROR, ErrorKind.OVERLOADED}
    assert message.error_message


def test_auth_error_is_failed_and_not_retryable(user, make_chat_provider, huey_consumer):
    provider = make_chat_provider("tokens=5", key="sk-invalid-key-000")
    message = _final(_send(user, provider))

    assert message.status == Message.Status.FAILED
    assert message.error_kind == ErrorKind.AUTH
    assert message.content == ""
    assert not message.retryable
    assert "rejected the API key" in message.error_text


def test_running_the_task_twice_gives_one_answer(user, make_chat_provider, huey_consumer):
    provider = make_chat_provider("tokens=10&delay=2")
    message = _send(user, provider)
    generate_message(message.pk)  # a duplicate delivery
    generate_message(message.pk)

    message = _final(message)
    assert message.content == expected_text(10)
    assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 1


def test_sweeper_recovers_a_killed_workers_messages(
    user, make_chat_provider, huey_consumer, settings
):
    provider = make_chat_provider("tokens=6")
    conversation = Conversation.objects.create(owner=user)
    hi = Message.objects.create(conversation=conversation, role="user", content="Hi")
    # What a killed worker leaves: a message stuck streaming with the text it saved,
    # and a message whose task was lost before any worker took it.
    stuck = Message.objects.create(
        conversation=conversation,
        parent=hi,
        role="assistant",
        status=Message.Status.STREAMING,
        content="partial answer",
        provider=provider,
        model="fake-model",
    )
    lost = Message.objects.create(
        conversation=conversation,
        parent=stuck,
        role="assistant",
        status=Message.Status.PENDING,
        provider=provider,
        model="fake-model",
    )
    # The request its send stored, as a send does.
    lost.request = services.build_request(message=lost).to_json()
    lost.save(update_fields=["request"])
    long_ago = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk__in=[stuck.pk, lost.pk]).update(updated_at=long_ago)

    sweep_messages()  # enqueued like the periodic run, executed by the consumer

    stuck = _final(stuck)
    assert stuck.status == Message.Status.FAILED
    assert stuck.content == "partial answer"
    assert stuck.error_kind == ErrorKind.TIMEOUT
    assert stuck.retryable
    lost = _final(lost)
    assert lost.status == Message.Status.COMPLETE
    assert lost.content == expected_text(6)


def test_shutdown_stops_running_generation_keeping_its_text(
    user, make_chat_provider, huey_consumer, read_sse
):
    from generation import runner

    provider = make_chat_provider("tokens=400&delay=20")
    message = _send(user, provider)
    first = read_sse(_stream_url(message), max_deltas=3)
    try:
        runner.begin_shutdown(grace=0)
        message = _final(message)
    finally:
        runner.cancel_shutdown()

    assert message.status == Message.Status.FAILED
    assert message.error_kind == ErrorKind.TIMEOUT
    assert message.retryable
    assert message.content.startswith(first.text)
    assert len(message.content) < len(expected_text(400))


def test_cancel_while_upstream_stalls_stops_within_a_moment(
    user, make_chat_provider, huey_consumer, read_sse, fake_upstream
):
    provider = make_chat_provider("tokens=20&delay=5&fault=stall&after=3")
    message = _send(user, provider)
    # Up to the stall: deltas may arrive merged, so wait for the text, not a count.
    first = read_sse(_stream_url(message), min_chars=len(expected_text(20, first=3)))
    assert not first.timed_out

    asked = time.monotonic()
    services.cancel_message(message=message)
    message = _final(message)

    assert time.monotonic() - asked < 1.0
    assert message.status == Message.Status.CANCELLED
    assert message.content == first.text
    wait_for(lambda: fake_upstream.early_closes >= 1)  # the upstream request was closed


def test_deleting_a_conversation_mid_answer_stops_and_still_meters(
    user, make_chat_provider, huey_consumer, read_sse
):
    from usage.models import UsageRecord

    provider = make_chat_provider("tokens=400&delay=20")
    message = _send(user, provider)
    read_sse(_stream_url(message), max_deltas=2)

    services.delete_conversation(conversation=message.conversation)

    record = wait_for(lambda: UsageRecord.objects.filter(provider=provider).first())
    assert record.message_id is None
    assert not Message.objects.filter(pk=message.pk).exists()


def test_no_prompt_text_in_logs_queue_or_events(
    user, make_chat_provider, huey_consumer, read_sse, caplog
):
    from huey.contrib.djhuey import HUEY

    secret = "prompt-text-xyzzy-4711"
    caplog.set_level("DEBUG")
    provider = make_chat_provider("tokens=5&delay=2")
    message = _send(user, provider, text=f"Please keep {secret} private")
    sse = read_sse(_stream_url(message))
    _final(message)

    assert secret not in caplog.text
    assert secret not in sse.raw
    assert all(secret.encode() not in bytes(item) for item in HUEY.storage.enqueued_items())
    assert HUEY.storage.result_store_size() == 0  # tasks return nothing to store


def test_a_streaming_answer_holds_no_pooled_connection_while_it_waits(
    user, make_chat_provider, huey_consumer
):
    from django.db import connection

    if "pool" not in connection.settings_dict.get("OPTIONS", {}):
        pytest.skip("PostgreSQL's connection pool (SQLite threads keep theirs)")

    def checked_out() -> int:
        from django.db import connections
        from django.db.backends.postgresql.base import DatabaseWrapper

        wrapper = connections["default"]  # the real wrapper: `connection` is a proxy
        assert isinstance(wrapper, DatabaseWrapper)
        stats = wrapper.pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    provider = make_chat_provider("tokens=12&delay=100")
    # The pool is the process's: an earlier test's thread may still hold one of its
    # connections. What counts is what the answer adds to the connections in use now.
    before = checked_out()
    message = _send(user, provider)
    wait_for(lambda: len(Message.objects.get(pk=message.pk).content) > 0)

    in_use = []
    for _ in range(10):  # over half a second: a save holds one for a moment only
        in_use.append(checked_out())
        time.sleep(0.05)

    assert Message.objects.get(pk=message.pk).status == Message.Status.STREAMING
    # The worker gave its connection back while it waits on upstream.
    assert min(in_use) <= before, (before, in_use)
    assert sum(n <= before for n in in_use) >= 8, (before, in_use)
    assert _final(message).status == Message.Status.COMPLETE
