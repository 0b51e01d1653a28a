"""An answer's life when it does not simply run to the end: stopped, retried, its relay
failing, its worker dying. What the user (and the budget) sees each time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from config.embedded_worker import create_consumer, start_consumer, stop_consumer
from generation import services
from generation.models import Conversation, Message
from generation.relay_memory import InProcessRelay
from generation.runner import _Generation
from generation.sweeper import sweep_stuck_messages
from generation.tasks import generate_message
from tests.generation.conftest import send_hello, wait_for
from tests.providers.fake_helpers import generation_calls
from usage.models import Reservation, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _send(user, provider, text: str = "Hello there", conversation=None) -> Message:
    return send_hello(user, provider, text, conversation=conversation)


def _ended(message: Message) -> Message:
    wait_for(lambda: Message.objects.get(pk=message.pk).status not in Message.ACTIVE)
    return Message.objects.get(pk=message.pk)


def _settled(message: Message) -> Reservation:
    assert message.reservation_id is not None
    held = Reservation.objects.filter(pk=message.reservation_id)
    wait_for(lambda: held.get().status != Reservation.Status.ACTIVE)
    return held.get()


def test_a_stopped_answer_is_billed_for_its_prompt(
    user, give_budget, make_chat_provider, huey_consumer
):
    # The provider charges the whole prompt even when the answer is stopped at once:
    # so must the usage records and the budget, or Stop would dodge every limit.
    give_budget(user)
    message = _send(user, make_chat_provider("tokens=400&delay=20"), text="lorem ipsum " * 2000)
    wait_for(lambda: Message.objects.get(pk=message.pk).content)
    services.cancel_message(message=message)
    message = _ended(message)
    assert message.status == Message.Status.CANCELLED
    held = _settled(message)
    (record,) = UsageRecord.objects.filter(message=message)
    assert record.outcome == "cancelled"
    assert record.tokens_estimated
    assert record.input_tokens > 5_000  # ~24,000 characters of prompt
    assert record.output_tokens > 0
    assert held.actual_nanos == record.cost_nanos > 0


def test_an_answer_stopped_before_its_first_token_is_still_metered(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    message = _send(user, make_chat_provider("ttft=5000"))
    wait_for(lambda: generation_calls(fake_upstream) >= 1)
    services.cancel_message(message=message)
    message = _ended(message)
    assert (message.status, message.content) == (Message.Status.CANCELLED, "")
    (record,) = wait_for(lambda: list(UsageRecord.objects.filter(message=message)))
    assert record.outcome == "cancelled"
    assert record.input_tokens > 0


def test_attempts_refused_before_a_stop_are_each_metered(
    user, make_chat_provider, huey_consumer, fake_upstream, settings
):
    # Stopped while the engine waits to retry a 429: the refused attempts stay on record.
    settings.SWITCHBOARD = {**settings.SWITCHBOARD, "RETRY_MAX_ATTEMPTS": 5}
    message = _send(user, make_chat_provider("fault=429&retry_after=2"))
    wait_for(lambda: generation_calls(fake_upstream) >= 1)
    services.cancel_message(message=message)
    message = _ended(message)
    records = wait_for(lambda: list(UsageRecord.objects.filter(message=message)))
    assert [r.outcome for r in records] == ["rate_limit"] * generation_calls(fake_upstream)


def test_a_retry_of_an_earlier_answer_answers_its_own_question(
    user, make_chat_provider, huey_consumer, fake_upstream
):
    # Question 1's answer fails, question 2 is answered, then Retry on the first answer:
    # it must answer question 1, not the conversation since.
    up, down = make_chat_provider("tokens=4"), make_chat_provider("fault=503", name="Down")
    first = _ended(_send(user, down, text="First question"))
    assert first.status == Message.Status.FAILED
    conversation = Conversation.objects.get(pk=first.conversation_id)
    _ended(_send(user, up, text="Second question", conversation=conversation))
    Message.objects.filter(pk=first.pk).update(provider=up)  # say it is back up

    retried = _ended(services.retry_message(message=Message.objects.get(pk=first.pk)))
    assert retried.status == Message.Status.COMPLETE
    # And a retry of that retry, if it had failed too, still answers question 1.
    Message.objects.filter(pk=retried.pk).update(status=Message.Status.FAILED, error_kind="network")
    again = _ended(services.retry_message(message=Message.objects.get(pk=retried.pk)))
    assert again.status == Message.Status.COMPLETE

    bodies = [r.body for r in fake_upstream.requests if r.path.endswith("/chat/completions")]
    for body in bodies[-2:]:
        assert [(m["role"], m["content"]) for m in body["messages"]] == [("user", "First question")]


def test_a_relay_failure_mid_answer_loses_neither_the_answer_nor_its_metering(
    user, make_chat_provider
):
    class FlakyRelay(InProcessRelay):
        published = 0

        async def apublish(self, key, event):
            self.published += 1
            if self.published == 3:
                raise ConnectionError("Redis went away for a moment")
            await super().apublish(key, event)

    pk = _send(user, make_chat_provider("tokens=10&delay=5")).pk
    Message.objects.filter(pk=pk).update(status=Message.Status.STREAMING)  # claimed
    message = Message.objects.select_related("provider", "conversation__owner").get(pk=pk)
    _Generation(message, FlakyRelay()).run()
    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert len(message.content) > 0
    (record,) = UsageRecord.objects.filter(message=message)
    assert record.outcome == "ok"


def test_the_sweeper_gives_back_the_budget_a_dead_worker_held(
    user, give_budget, make_chat_provider
):
    give_budget(user)
    message = _send(user, make_chat_provider())  # no consumer: what a killed worker leaves
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.STREAMING, updated_at=timezone.now() - timedelta(minutes=10)
    )
    assert message.pk in sweep_stuck_messages(requeue=generate_message).failed
    assert Reservation.objects.get(pk=message.reservation_id).status == Reservation.Status.RELEASED


def test_a_double_clicked_retry_makes_one_answer_and_holds_no_extra_budget(
    user, give_budget, make_chat_provider
):
    give_budget(user)
    message = _send(user, make_chat_provider())
    Message.objects.filter(pk=message.pk).update(status=Message.Status.FAILED, error_kind="network")
    # Both requests load the failed answer (and see no retry of it) before either
    # retry is stored.
    loaded = Message.objects.select_related("retried_by")
    first, second = (loaded.get(pk=message.pk) for _ in range(2))
    services.retry_message(message=first)
    with pytest.raises(services.SendError, match="already being retried"):
        services.retry_message(message=second)
    assert Message.objects.filter(retry_of=message).count() == 1
    held = Reservation.objects.filter(status=Reservation.Status.ACTIVE)
    assert held.count() == 2  # the original answer's and the one retry's


def test_a_nul_character_from_the_model_does_not_break_the_answer(
    user, make_chat_provider, huey_consumer
):
    # PostgreSQL refuses NUL in text: unreplaced, every save of this answer would fail.
    answer = _ended(_send(user, make_chat_provider("tokens=6&nul=3")))
    assert answer.status == Message.Status.COMPLETE
    assert "\x00" not in answer.content
    assert answer.content.count("\ufffd") == 1
    assert len(answer.content.split()) == 6


def test_deleting_a_conversation_gives_back_the_budget_its_answers_held(
    user, give_budget, make_chat_provider
):
    give_budget(user)
    message = _send(user, make_chat_provider())
    # Claimed by a worker that has not loaded it yet, and never will: the row is gone.
    Message.objects.filter(pk=message.pk).update(status=Message.Status.STREAMING)
    services.delete_conversation(conversation=Conversation.objects.get(pk=message.conversation_id))
    assert Reservation.objects.get(pk=message.reservation_id).status == Reservation.Status.RELEASED


def test_a_send_whose_insert_fails_leaves_no_budget_held(
    user, give_budget, make_chat_provider, monkeypatch
):
    # The hold is taken in the send's transaction: a failed insert takes it back too,
    # or a user's budget would shrink with every send that errored.
    give_budget(user)
    provider = make_chat_provider("tokens=5")

    def refuse(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Message.objects, "create", refuse)
    with pytest.raises(DatabaseError):
        _send(user, provider)

    assert not Reservation.objects.exists()
    assert not Message.objects.exists()


def test_an_answer_taken_while_the_process_stops_waits_for_the_next_one(
    user, make_chat_provider, fake_upstream
):
    # A worker that takes a task after its process began to stop would start an answer
    # only to interrupt it: it leaves the answer pending and queues it again instead.
    from huey.contrib.djhuey import HUEY

    from generation import runner

    provider = make_chat_provider("tokens=5")
    message = _send(user, provider)
    HUEY.storage.flush_queue()  # the send's own task: taken, as by the stopping worker
    runner.begin_shutdown(grace=5)
    try:
        generate_message.call_local(message.pk)
    finally:
        runner.cancel_shutdown()

    assert Message.objects.get(pk=message.pk).status == Message.Status.PENDING
    assert generation_calls(fake_upstream) == 0
    assert HUEY.pending_count() == 1
    consumer = create_consumer(workers=1, periodic=False)  # the next process's worker
    start_consumer(consumer)
    try:
        assert _ended(message).status == Message.Status.COMPLETE
    finally:
        stop_consumer(consumer)


def test_a_lone_surrogate_from_the_model_does_not_break_the_answer(
    user, make_chat_provider, huey_consumer
):
    # Unreplaced, the worker's final save raised and the answer stayed "streaming".
    answer = _ended(_send(user, make_chat_provider("tokens=6&surrogate=3")))
    assert answer.status == Message.Status.COMPLETE
    assert answer.content.count("\ufffd") == 1
    assert len(answer.content.split()) == 6
    # Metered just after the answer is stored: wait for it, do not race it.
    wait_for(lambda: UsageRecord.objects.filter(message=answer, outcome="ok").count() == 1)
