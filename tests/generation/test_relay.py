"""The relay backends and the notifying queue storage, on their own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
import uuid

import pytest

from generation.relay_base import ACTIVE_TTL, RelayEvent
from generation.relay_memory import InProcessRelay
from tests.generation.conftest import REDIS_TEST_URL


def _relay(kind: str):
    if kind == "redis":
        from generation.relay_redis import RedisRelay

        return RedisRelay(REDIS_TEST_URL)
    return InProcessRelay()


backends = pytest.mark.parametrize(
    "kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)]
)


async def _collect(relay, key: str, after: int, idle: float, stop_after_none: int = 1):
    seen: list[RelayEvent | None] = []
    nones = 0
    async with asyncio.timeout(5):
        async for event in relay.follow(key, after=after, idle=idle):
            seen.append(event)
            if event is None:
                nones += 1
                if nones >= stop_after_none:
                    break
    return seen


@backends
def test_follow_replays_after_offset_and_ends_on_complete(kind):
    relay, key = _relay(kind), uuid.uuid4().hex
    for end, text in ((3, "abc"), (5, "de"), (9, "fghi")):
        relay.publish(key, RelayEvent(end, text))
    relay.complete(key)

    events = asyncio.run(_collect(relay, key, after=3, idle=1))

    assert _read(events) == (3, "defghi")
    assert events[-1].id == 9


@backends
def test_follow_wakes_on_publish_from_another_thread(kind):
    relay, key = _relay(kind), uuid.uuid4().hex

    def worker() -> None:
        time.sleep(0.05)
        relay.publish(key, RelayEvent(2, "hi"))
        relay.complete(key)

    threading.Thread(target=worker).start()
    started = time.monotonic()
    events = asyncio.run(_collect(relay, key, after=0, idle=3))

    assert events == [RelayEvent(2, "hi")]
    assert time.monotonic() - started < 1, "woken at once, not at the idle timeout"


@backends
def test_follow_yields_none_when_idle_for_heartbeats(kind):
    relay, key = _relay(kind), uuid.uuid4().hex
    events = asyncio.run(_collect(relay, key, after=0, idle=0.05, stop_after_none=2))
    assert events == [None, None]


@backends
def test_cancel_flag(kind):
    relay, key = _relay(kind), uuid.uuid4().hex
    assert not relay.cancel_requested(key)
    relay.request_cancel(key)
    assert relay.cancel_requested(key)
    relay.complete(key)
    assert not relay.cancel_requested(key)


async def _publish_later(relay, key: str, events: list[RelayEvent], delay: float = 0.05) -> None:
    # From a thread, as a worker does: publish() is synchronous.
    def publish() -> None:
        time.sleep(delay)
        for event in events:
            relay.publish(key, event)
        relay.complete(key)

    await asyncio.to_thread(publish)


def _read(events: list[RelayEvent | None]) -> tuple[int, str]:
    """(where the reader started, the text it read): events may arrive merged (a reader
    that fell behind gets the pending deltas as one), never with a gap or an overlap."""
    deltas = [event for event in events if event is not None]
    for before, after in itertools.pairwise(deltas):
        assert after.start == before.id, "contiguous, in order"
    return (deltas[0].start if deltas else -1), "".join(event.text for event in deltas)


def _deltas(count: int, size: int = 2) -> list[RelayEvent]:
    return [RelayEvent((i + 1) * size, f"{i:0{size}d}"[-size:]) for i in range(count)]


@backends
def test_many_followers_on_different_keys_each_get_their_own_events_in_order(kind):
    relay = _relay(kind)
    keys = [uuid.uuid4().hex for _ in range(40)]
    sent = {key: [RelayEvent(i + 1, key[i]) for i in range(10)] for key in keys}

    async def scenario() -> dict[str, list[RelayEvent | None]]:
        followers = [asyncio.create_task(_collect(relay, key, 0, idle=3)) for key in keys]
        await asyncio.sleep(0.1)  # all of them waiting before anything is published
        # Interleaved, as concurrent generations publish.
        for i in range(10):
            for key in keys:
                relay.publish(key, sent[key][i])
            await asyncio.sleep(0)
        for key in keys:
            relay.complete(key)
        return dict(zip(keys, await asyncio.gather(*followers), strict=True))

    received = asyncio.run(scenario())

    assert {key: _read(events) for key, events in received.items()} == {
        key: (0, key[:10]) for key in keys
    }


@backends
def test_two_followers_of_one_key_both_get_everything(kind):
    relay, key = _relay(kind), uuid.uuid4().hex
    events = _deltas(30)

    async def scenario() -> tuple[list, list, list]:
        # Two tabs on the message from the start, a third resuming half-way.
        first = asyncio.create_task(_collect(relay, key, 0, idle=3))
        second = asyncio.create_task(_collect(relay, key, 0, idle=3))
        resumed = asyncio.create_task(_collect(relay, key, events[14].id, idle=3))
        await _publish_later(relay, key, events)
        return await asyncio.gather(first, second, resumed)

    first, second, resumed = asyncio.run(scenario())

    everything = "".join(event.text for event in events)
    assert _read(first) == (0, everything)
    assert _read(second) == (0, everything)
    assert _read(resumed) == (events[14].id, everything[events[14].id :])


@backends
def test_a_follower_joining_while_others_wait_is_served_at_once(kind):
    relay, waiting_key, key = _relay(kind), uuid.uuid4().hex, uuid.uuid4().hex
    relay.publish(key, RelayEvent(2, "hi"))

    async def scenario() -> tuple[list, float]:
        # Someone already waits (on Redis: the shared reader is blocked in XREAD).
        waiting = asyncio.create_task(_collect(relay, waiting_key, 0, idle=5))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        seen = []
        async with asyncio.timeout(5):
            async for event in relay.follow(key, after=0, idle=5):
                seen.append(event)
                break
        elapsed = time.monotonic() - started
        relay.complete(waiting_key)
        await waiting
        return seen, elapsed

    seen, elapsed = asyncio.run(scenario())

    assert seen == [RelayEvent(2, "hi")]
    # The reader's XREAD blocks for a second: the joiner must not wait for it to end.
    assert elapsed < 0.5, f"served after {elapsed:.3f} s"


@backends
def test_a_reader_that_fell_behind_gets_the_pending_deltas_as_one_event(kind):
    relay, key = _relay(kind), uuid.uuid4().hex
    for end, text in ((2, "ab"), (4, "cd"), (6, "ef")):
        relay.publish(key, RelayEvent(end, text))

    async def first_read() -> RelayEvent | None:
        # Closed as the SSE view closes it (Django's aclosing): the reader's Redis
        # connections go with it.
        async with (
            asyncio.timeout(5),
            contextlib.aclosing(relay.follow(key, after=1, idle=1)) as events,
        ):
            async for event in events:
                return event
        return None

    # One SSE frame for three tokens, starting where the reader is (offset 1 is inside
    # the first delta; the view trims the overlap).
    assert asyncio.run(first_read()) == RelayEvent(6, "abcdef")


@backends
def test_apublish_from_the_stream_loop_reaches_a_follower_on_another_loop(kind):
    from generation import stream_loop

    relay, key = _relay(kind), uuid.uuid4().hex

    async def publish_all() -> None:
        for end, text in ((2, "ab"), (5, "cde")):
            await relay.apublish(key, RelayEvent(end, text))

    stream_loop.submit(publish_all()).result(5)
    if kind == "redis":
        import redis

        ttl = redis.Redis.from_url(REDIS_TEST_URL).ttl(relay.stream_name(key))
        assert ACTIVE_TTL - 5 < ttl <= ACTIVE_TTL  # a live stream's TTL, set with its first event
    relay.complete(key)

    events = asyncio.run(_collect(relay, key, after=0, idle=1))
    assert _read(events) == (0, "abcde")
