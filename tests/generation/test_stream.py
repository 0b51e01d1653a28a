"""The SSE view against a relay fed by hand: framing, gaps, several readers."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test import AsyncClient
from django.urls import reverse

from generation.models import Conversation, Message
from generation.relay import RelayEvent, get_relay
from generation.rendering import delta_frame, sse_frame
from tests.generation.conftest import SSEResult, parse_block

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("relay_backend")]


def _streaming(user, content: str = "") -> Message:
    conversation = Conversation.objects.create(owner=user)
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status=Message.Status.STREAMING,
        content=content,
        model="fake-model",
    )


def _worker(message: Message, events: list[RelayEvent], final: str, delay: float = 0.1) -> None:
    """Play a worker: publish `events`, then save `final` as the complete answer."""

    def run() -> None:
        time.sleep(delay)
        relay = get_relay()
        for event in events:
            relay.publish(message.relay_key, event)
        try:
            Message.objects.filter(pk=message.pk).update(content=final, status="complete")
        finally:
            connection.close()  # this thread's own
        relay.complete(message.relay_key)

    threading.Thread(target=run).start()


def test_a_hole_in_the_relay_is_filled_from_the_database(user, read_sse):
    message = _streaming(user, content="abc")
    # The relay lost "def" (trimmed); the reader must still end with every character.
    _worker(message, [RelayEvent(8, "gh"), RelayEvent(10, "ij")], final="abcdefghij")

    sse = read_sse(reverse("generation:stream", args=[message.pk]))

    assert sse.text == "abcdefghij"
    ids = [int(e.id) for e in sse.deltas]
    assert ids == sorted(set(ids))
    assert sse.done is not None


def test_an_answer_deleted_while_streaming_ends_its_stream_saying_so(user, read_sse):
    # Another tab deleted the conversation: this tab's stream must end, not leave the
    # browser reconnecting to a stream that is now a 404.
    message = _streaming(user, content="ab")
    get_relay().publish(message.relay_key, RelayEvent(4, "cd"))

    def delete_and_complete() -> None:
        Conversation.objects.filter(pk=message.conversation_id).delete()
        get_relay().complete(message.relay_key)

    async def once_following(sse: SSEResult) -> None:
        # The stream is open and has sent its text: now the other tab deletes.
        if sse.text == "abcd":
            await sync_to_async(delete_and_complete)()

    sse = read_sse(reverse("generation:stream", args=[message.pk]), on_delta=once_following)
    assert not sse.timed_out
    assert sse.text == "abcd"
    assert sse.done is not None
    assert "was deleted" in sse.done.data
    assert read_sse(reverse("generation:stream", args=[message.pk])).status == 404


def test_a_client_ahead_of_the_database_gets_no_repeat(user, read_sse):
    message = _streaming(user, content="ab")  # saved text lags what the relay carried
    _worker(message, [RelayEvent(4, "cd"), RelayEvent(6, "ef")], final="abcdef")

    sse = read_sse(reverse("generation:stream", args=[message.pk]), last_event_id="4")

    assert sse.text == "ef"


def test_two_readers_each_get_the_whole_answer(user, read_sse):
    message = _streaming(user)
    url = reverse("generation:stream", args=[message.pk])
    events = [RelayEvent(i * 2, f"{i:02d}"[-2:]) for i in range(1, 30)]
    final = "".join(e.text for e in events)
    _worker(message, events, final=final, delay=0.3)
    results = []

    def read_it() -> None:
        try:
            results.append(read_sse(url))
        finally:
            connection.close()  # this thread's own

    readers = [threading.Thread(target=read_it) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()

    assert [r.text for r in results] == [final, final]


def test_stream_is_not_gzipped(user, read_sse):
    message = _streaming(user)
    Message.objects.filter(pk=message.pk).update(status="complete", content="done")
    sse = read_sse(
        reverse("generation:stream", args=[message.pk]), headers={"Accept-Encoding": "gzip"}
    )
    assert "Content-Encoding" not in sse.headers
    assert sse.raw.startswith("event: delta\nid: 4\ndata: done\n\n")


def test_frames_cannot_be_split_by_their_data():
    frame = delta_frame(text="a\r\nb\rc\n\nevent: done\ndata: x", id=3).decode()
    blocks = frame.split("\n\n")
    assert blocks[1:] == [""], "one event, whatever the text holds"
    event = parse_block(blocks[0])
    assert (event.event, event.id) == ("delta", "3")
    assert event.data == "a&#13;\nb&#13;c\n\nevent: done\ndata: x"
    done = sse_frame(event="done", data="<p>x</p>\n\n<p>y</p>").decode()
    assert done.count("\n\n") == 1


def test_an_open_stream_holds_no_database_connection(user, client, monkeypatch):
    # A stream waiting on the relay must not keep a database connection: PostgreSQL
    # allows ~100, and a web process holds hundreds of open streams (each also an open
    # file on SQLite). It gives its own back once its reads are done.
    message = _streaming(user, content="ab")
    client.force_login(user)
    async_client = AsyncClient()
    async_client.cookies = client.cookies
    url = reverse("generation:stream", args=[message.pk])

    async def read_then_check() -> tuple[bytes, bool, bytes]:
        response = await async_client.get(url)
        chunks = aiter(response.streaming_content)
        first = await anext(chunks)  # the saved text; the view now tails the relay
        # The view's ORM calls run in this thread (thread-sensitive sync_to_async).
        released = await sync_to_async(lambda: connection.connection is None)()
        get_relay().publish(message.relay_key, RelayEvent(4, "cd"))
        second = await anext(chunks)
        await chunks.aclose()
        return first, released, second

    first, released, second = async_to_sync(read_then_check)()

    assert first == delta_frame(text="ab", id=2)
    assert released
    assert second == delta_frame(text="cd", id=4)


def test_resuming_a_long_answer_from_many_offsets_keeps_no_copies(user, read_sse):
    # Each ?after= replays a different tail of the text: kept, 4,096 of them would pin
    # gigabytes for anyone who asks (the frames of live deltas are still shared).
    import gc
    import tracemalloc

    answer = _streaming(user, content="lorem ipsum <b> & " * 4000)  # ~72 KB
    Message.objects.filter(pk=answer.pk).update(status=Message.Status.COMPLETE)
    url = reverse("generation:stream", args=[answer.pk])
    # Warm: imports, first-request caches, the relay's connections, the metrics' files
    # (one request was not always enough on Redis after the whole suite had run).
    for after in (0, 1, 2):
        read_sse(f"{url}?after={after}")
    gc.collect()
    tracemalloc.start(5)
    try:
        start = tracemalloc.take_snapshot()
        before = tracemalloc.get_traced_memory()[0]
        for after in range(1, 16):
            result = read_sse(f"{url}?after={after}")
            assert len(result.text) == len(answer.content) - after
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
        grown = tracemalloc.take_snapshot().compare_to(start, "filename")[:5]
    finally:
        tracemalloc.stop()
    # 15 replays of 72 KB, kept twice over (text, frame), would be ~2-3 MB. The test
    # client itself keeps ~8 KB a request (a DatabaseWrapper per request thread; a real
    # uvicorn process grew 0.6 KB a stream over 2,000 of them).
    assert kept < 1_000_000, "\n".join(str(stat) for stat in grown)


def test_a_stream_with_nothing_to_send_yet_opens_with_a_comment_at_once(user, read_sse):
    # A browser (or proxy) waiting for a slow model's first token sees the stream open
    # now, not after the heartbeat interval.
    message = _streaming(user)
    sse = read_sse(reverse("generation:stream", args=[message.pk]), limit=1.0)
    assert sse.timed_out  # still waiting for the answer's first token
    assert sse.raw.startswith(": keep-alive\n\n")
    assert sse.deltas == []
