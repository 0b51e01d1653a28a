"""The worker's generation loop, driven directly (no queue) with a relay that counts."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from generation.models import Message
from generation.relay_base import RelayEvent
from generation.relay_memory import InProcessRelay
from generation.runner import _Generation
from providers.adapters.base import GenerationResult
from tests.generation.conftest import expected_text, send_hello

pytestmark = pytest.mark.django_db(transaction=True)


class CountingRelay(InProcessRelay):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[RelayEvent] = []

    def publish(self, key: str, event: RelayEvent) -> None:
        self.published.append(event)
        super().publish(key, event)


def _claimed_answer(user, provider) -> Message:
    pk = send_hello(user, provider).pk
    Message.objects.filter(pk=pk).update(status=Message.Status.STREAMING)
    return Message.objects.select_related("provider", "conversation__owner").get(pk=pk)


def test_a_fast_stream_is_relayed_in_order_with_exact_offsets(user, make_chat_provider):
    # No delay between tokens: the upstream's chunks reach the worker in a few reads.
    message = _claimed_answer(user, make_chat_provider("tokens=60&delay=0"))
    relay = CountingRelay()

    _Generation(message, relay).run()

    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert message.content == expected_text(60)
    events = relay.published
    assert "".join(event.text for event in events) == message.content
    # Offsets stay exact: each event starts where the one before it ended.
    assert [event.start for event in events] == [0, *(event.id for event in events[:-1])]


def test_spaced_deltas_are_relayed_one_by_one(user, make_chat_provider):
    message = _claimed_answer(user, make_chat_provider("tokens=8&delay=20"))
    relay = CountingRelay()

    _Generation(message, relay).run()

    assert len(relay.published) == 8
    assert "".join(event.text for event in relay.published) == expected_text(8)


def _run_on_a_thread(message: Message) -> None:
    """A worker thread's part: the generation, then its own connection closed (left
    open, a pooled PostgreSQL connection stays checked out after the thread ends)."""
    try:
        _Generation(message, InProcessRelay()).run()
    finally:
        connection.close()


def test_answers_on_different_worker_threads_share_the_upstream_connection(
    user, make_chat_provider, fake_upstream
):
    # Each answer on a thread of its own, as the queue's worker threads take them: all
    # stream on the process's one loop, over one kept-alive connection to the provider
    # (to a real one, each new connection is a TCP and TLS handshake before the answer).
    provider = make_chat_provider("tokens=3&delay=1")
    for _ in range(3):
        message = _claimed_answer(user, provider)
        worker = threading.Thread(target=_run_on_a_thread, args=[message])
        worker.start()
        worker.join(10)
        message.refresh_from_db()
        assert message.status == Message.Status.COMPLETE

    generations = [r for r in fake_upstream.requests if r.path == "/v1/chat/completions"]
    assert len(generations) == 3
    assert len({r.connection for r in generations}) == 1


def test_a_result_longer_than_the_relayed_text_is_relayed_and_saved(user, make_chat_provider):
    # An answer that arrives whole at the end (nothing streamed before it): readers get
    # the rest from the relay, the row keeps all of it.
    message = _claimed_answer(user, make_chat_provider())
    relay = CountingRelay()

    _Generation(message, relay)._finish(GenerationResult(text="Whole answer", model="fake-model"))

    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert message.content == "Whole answer"
    assert relay.published == [RelayEvent(12, "Whole answer")]
