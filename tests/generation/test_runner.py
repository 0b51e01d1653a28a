"""The worker's generation loop, driven directly (no queue) with a relay that counts."""

from __future__ import annotations

import pytest

from generation import services
from generation.models import Message
from generation.relay import InProcessRelay, RelayEvent
from generation.runner import _Generation
from tests.generation.conftest import expected_text

pytestmark = pytest.mark.django_db(transaction=True)


class CountingRelay(InProcessRelay):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[RelayEvent] = []

    def publish(self, key: str, event: RelayEvent) -> None:
        self.published.append(event)
        super().publish(key, event)


def _claimed_answer(user, provider) -> Message:
    sent = services.send_message(
        user=user,
        conversation=None,
        text="Hello",
        provider=provider,
        model="",
        temperature=None,
        max_tokens=None,
    )
    pk = sent.assistant_message.pk
    Message.objects.filter(pk=pk).update(status=Message.Status.STREAMING)
    return Message.objects.select_related("provider", "conversation__owner").get(pk=pk)


def test_deltas_that_arrive_together_go_out_as_one_relay_event(user, make_chat_provider):
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
    assert len(events) < 60


def test_spaced_deltas_are_relayed_one_by_one(user, make_chat_provider):
    message = _claimed_answer(user, make_chat_provider("tokens=8&delay=20"))
    relay = CountingRelay()

    _Generation(message, relay).run()

    assert len(relay.published) == 8
    assert "".join(event.text for event in relay.published) == expected_text(8)
