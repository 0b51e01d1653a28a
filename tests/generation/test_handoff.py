"""A send lets its answer's in-process worker reach upstream before it renders."""

from __future__ import annotations

import threading
import time

import pytest
from django.urls import reverse

from generation import handoff
from generation.models import Message
from generation.runner import run_generation
from tests.generation.conftest import send_hello

HX = {"HX-Request": "true"}


@pytest.fixture
def local_consumer():
    handoff.local_consumer_started()
    yield
    handoff.local_consumer_stopped()


def test_without_a_worker_in_the_process_nothing_waits():
    started = time.monotonic()
    assert handoff.wait_for_start(123, limit=1.0)
    assert time.monotonic() - started < 0.1


def test_the_wait_ends_when_the_answer_starts(local_consumer):
    threading.Timer(0.05, handoff.started, args=[7]).start()
    started = time.monotonic()
    assert handoff.wait_for_start(7, limit=2.0)
    assert 0.04 < time.monotonic() - started < 1.0


def test_a_start_before_the_wait_is_not_missed(local_consumer):
    handoff.started(8)  # a fast worker
    started = time.monotonic()
    assert handoff.wait_for_start(8, limit=2.0)
    assert time.monotonic() - started < 0.1


def test_the_wait_is_bounded(local_consumer):
    started = time.monotonic()
    assert not handoff.wait_for_start(9, limit=0.05)
    assert time.monotonic() - started < 0.5


def test_starts_nobody_waits_for_are_not_kept_forever(local_consumer):
    for message_id in range(handoff.KEPT_MARKS * 3):
        handoff.started(message_id)
    assert len(handoff._events) == handoff.KEPT_MARKS


@pytest.mark.django_db(transaction=True)
def test_the_worker_lets_the_send_go_on_once_its_request_is_out(
    user, make_chat_provider, fake_upstream, local_consumer
):
    provider = make_chat_provider("ttft=300")
    answer = send_hello(user, provider)
    worker = threading.Thread(target=run_generation, kwargs={"message_id": answer.pk})
    worker.start()
    try:
        assert handoff.wait_for_start(answer.pk, limit=5.0)
        # Not at the end of the answer: while it waits for its first token.
        answer.refresh_from_db()
        assert (answer.status, answer.content) == (Message.Status.STREAMING, "")
    finally:
        worker.join(10)
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE


@pytest.mark.django_db
def test_the_send_responds_once_its_answer_started(
    client, user, make_chat_provider, local_consumer, monkeypatch
):
    monkeypatch.setattr(handoff, "WAIT_LIMIT", 5.0)
    provider = make_chat_provider()
    client.force_login(user)
    # No worker here: the answer "starts" 0.3 s after the send (its id is the next one).
    next_id = (Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 2
    threading.Timer(0.3, handoff.started, args=[next_id]).start()
    started = time.monotonic()
    data = {"text": "Hello", "provider": provider.pk, "model": ""}
    response = client.post(reverse("generation:send"), data, headers=HX)
    assert response.status_code == 200
    assert Message.objects.get(role=Message.Role.ASSISTANT).pk == next_id
    assert 0.25 < time.monotonic() - started < 4.0


@pytest.mark.django_db
def test_an_answer_that_never_reaches_upstream_does_not_hold_its_send(local_consumer):
    # Already claimed, stopped or deleted: the worker has nothing to do.
    run_generation(message_id=424242)
    started = time.monotonic()
    assert handoff.wait_for_start(424242, limit=5.0)
    assert time.monotonic() - started < 0.1
