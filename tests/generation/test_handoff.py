"""A send lets its answer's worker reach upstream before it renders (handoff.py), with
the start mark carried by either relay."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from generation import handoff
from generation.models import Message
from generation.relay import STARTED_KEPT, STARTED_TTL, get_relay
from generation.relay_redis import PREFIX
from generation.runner import run_generation
from tests.generation.conftest import send_hello, wait_for

pytestmark = pytest.mark.usefixtures("relay_backend")

HX = {"HX-Request": "true"}


def test_a_mark_ends_the_wait(relay_backend):
    relay = get_relay()
    threading.Timer(0.05, relay.mark_started, args=["k-later"]).start()
    started = time.monotonic()
    assert relay.wait_started("k-later", timeout=2.0)
    assert 0.04 < time.monotonic() - started < 1.0


def test_a_mark_before_the_wait_is_not_missed(relay_backend):
    relay = get_relay()
    relay.mark_started("k-early")  # a fast worker
    started = time.monotonic()
    assert relay.wait_started("k-early", timeout=2.0)
    assert time.monotonic() - started < 0.5


def test_the_wait_is_bounded_and_marks_are_per_answer(relay_backend):
    relay = get_relay()
    relay.mark_started("k-other")
    started = time.monotonic()
    assert not relay.wait_started("k-unmarked", timeout=0.02)
    # Kept by us: Redis's own BLPOP timeout ends on its 10 Hz timer, 100 ms late.
    assert time.monotonic() - started < 0.09
    # The connection of a wait that ended first is not handed to the next command.
    relay.mark_started("k-next")
    assert relay.wait_started("k-next", timeout=1.0)


def test_marks_nobody_waits_for_do_not_pile_up(relay_backend):
    # An API call's answer is marked too, and no send waits for it.
    relay = get_relay()
    if relay_backend == "redis":
        relay.mark_started("unwaited")
        assert 0 < relay._client.ttl(f"{PREFIX}unwaited:started") <= STARTED_TTL
    else:
        for n in range(STARTED_KEPT * 2):
            relay.mark_started(f"unwaited-{n}")
        assert len(relay._started) == STARTED_KEPT


@override_settings(EMBEDDED_WORKER=True)
@pytest.mark.django_db
def test_without_a_worker_to_start_it_the_send_does_not_wait(user, make_chat_provider):
    # The embedded deployment with its consumer stopped (or not started, as here).
    answer = send_hello(user, make_chat_provider())
    started = time.monotonic()
    assert handoff.wait_for_start(answer)
    assert time.monotonic() - started < 0.04


def _worker(message_id: int) -> None:
    """A huey worker thread's part: the task, then its connection closed."""
    try:
        run_generation(message_id=message_id)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_worker_marks_its_answer_once_the_request_is_out(user, make_chat_provider):
    answer = send_hello(user, make_chat_provider("ttft=300"))
    worker = threading.Thread(target=_worker, args=[answer.pk])
    worker.start()
    try:
        assert get_relay().wait_started(answer.relay_key, timeout=5.0)
        # Not at the end of the answer: while it waits for its first token.
        answer.refresh_from_db()
        assert (answer.status, answer.content) == (Message.Status.STREAMING, "")
    finally:
        worker.join(10)
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_an_answer_that_never_reaches_upstream_does_not_hold_its_send(user, make_chat_provider):
    provider = make_chat_provider()
    answer = send_hello(user, provider)
    type(provider).objects.filter(pk=provider.pk).update(is_active=False)  # switched off
    run_generation(message_id=answer.pk)
    started = time.monotonic()
    assert get_relay().wait_started(answer.relay_key, timeout=5.0)
    assert time.monotonic() - started < 0.5
    answer.refresh_from_db()
    assert answer.status == Message.Status.FAILED


@override_settings(EMBEDDED_WORKER=False)  # workers in other processes
@pytest.mark.django_db(transaction=True)
def test_the_send_responds_once_its_answer_started(client, user, make_chat_provider, monkeypatch):
    monkeypatch.setattr(handoff, "WAIT_LIMIT", 5.0)
    client.force_login(user)
    provider = make_chat_provider()

    def worker_starts_it_after_a_while() -> None:
        try:
            query = Message.objects.filter(role=Message.Role.ASSISTANT)
            answer = wait_for(lambda: query.first())
        finally:
            connection.close()  # this thread's: the test database is dropped after
        time.sleep(0.3)
        get_relay().mark_started(answer.relay_key)

    threading.Thread(target=worker_starts_it_after_a_while, daemon=True).start()
    started = time.monotonic()
    data = {"text": "Hello", "provider": provider.pk, "model": ""}
    response = client.post(reverse("generation:send"), data, headers=HX)
    assert response.status_code == 200
    assert 0.25 < time.monotonic() - started < 4.0


@override_settings(EMBEDDED_WORKER=False)
@pytest.mark.django_db
def test_a_relay_failure_does_not_fail_the_send(user, make_chat_provider, monkeypatch):
    # The answer is committed and queued: an error page would invite a resend.
    answer = send_hello(user, make_chat_provider())

    def unreachable(key: str, timeout: float) -> bool:
        raise ConnectionError("relay down")

    monkeypatch.setattr(get_relay(), "wait_started", unreachable)
    assert handoff.wait_for_start(answer) is False
