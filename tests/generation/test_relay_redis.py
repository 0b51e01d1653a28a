"""The Redis relay's shared reader: one XREAD per event loop for all its followers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
import redis

from generation.relay_base import ACTIVE_TTL, COMPLETED_TTL, RelayEvent
from generation.relay_redis import RedisRelay
from generation.relay_redis_reader import BLOCK_MS, client_name
from tests.generation.conftest import REDIS_TEST_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def relay() -> RedisRelay:
    return RedisRelay(REDIS_TEST_URL)


@pytest.fixture
def admin() -> redis.Redis:
    return redis.Redis.from_url(REDIS_TEST_URL, decode_responses=True)


def reader_connections(admin: redis.Redis) -> list[dict]:
    """This process's relay reader connections (other test runs may share the server)."""
    return [c for c in admin.client_list() if c.get("name") == client_name()]


async def follow_all(relay: RedisRelay, key: str, after: int = 0) -> list[RelayEvent]:
    seen: list[RelayEvent] = []
    async with asyncio.timeout(10):
        async for event in relay.follow(key, after=after, idle=5):
            assert event is not None, "no heartbeat expected: events keep coming"
            seen.append(event)
    return seen


def test_one_connection_serves_every_follower_of_a_loop(relay, admin):
    keys = [uuid.uuid4().hex for _ in range(50)]

    async def scenario() -> tuple[list[list[RelayEvent]], int]:
        followers = [asyncio.create_task(follow_all(relay, key)) for key in keys]
        await asyncio.sleep(0.2)
        connections = len(reader_connections(admin))
        for key in keys:
            relay.publish(key, RelayEvent(len(key), key))
            relay.complete(key)
        return await asyncio.gather(*followers), connections

    received, connections = asyncio.run(scenario())

    assert received == [[RelayEvent(len(key), key)] for key in keys]
    # The blocking reader, and at most one more for the wake-ups of followers joining.
    assert 1 <= connections <= 2


def test_the_last_follower_leaving_stops_the_reader_and_closes_its_connections(relay, admin):
    key = uuid.uuid4().hex
    # Readers of earlier tests in this process may linger on loops of their own: only
    # this reader's connections count.
    earlier = {c["id"] for c in reader_connections(admin)}

    async def scenario() -> tuple[set[str], str]:
        first = asyncio.create_task(follow_all(relay, key))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(follow_all(relay, key))  # joins a blocked reader
        await asyncio.sleep(0.1)
        (entry,) = relay._loop_clients.values()
        during = {c["id"] for c in reader_connections(admin)} - earlier
        relay.publish(key, RelayEvent(1, "x"))
        relay.complete(key)
        await asyncio.gather(first, second)
        assert entry.client.stopped
        assert not entry.client.running
        return during, entry.client.wake_key

    during, wake_key = asyncio.run(scenario())

    assert len(during) >= 1
    assert relay._loop_clients == {}

    def still_open() -> set[str]:
        return during & {c["id"] for c in reader_connections(admin)}

    # Closed on our side; Redis drops it from CLIENT LIST when it reads the close.
    deadline = time.monotonic() + 2
    while still_open() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert still_open() == set()
    assert not admin.exists(wake_key)


def test_a_new_loop_after_the_last_follower_left_gets_a_new_reader(relay):
    # As pytest runs one asyncio.run after another: nothing may leak between them.
    for _ in range(3):
        key = uuid.uuid4().hex
        relay.publish(key, RelayEvent(3, "abc"))
        relay.complete(key)
        assert asyncio.run(follow_all(relay, key)) == [RelayEvent(3, "abc")]
        assert relay._loop_clients == {}


def test_a_follower_joining_a_blocked_reader_does_not_wait_for_its_timeout(relay):
    waiting_key, key = uuid.uuid4().hex, uuid.uuid4().hex

    async def scenario() -> list[float]:
        waiting = asyncio.create_task(follow_all(relay, waiting_key))
        latencies = []
        for i in range(5):
            await asyncio.sleep(0.2)
            (entry,) = relay._loop_clients.values()
            assert entry.client._reading, "the reader is blocked in XREAD"
            relay.publish(key, RelayEvent(i + 1, "x"))
            started = time.monotonic()
            async with asyncio.timeout(5):
                async for event in relay.follow(key, after=i, idle=5):
                    assert event == RelayEvent(i + 1, "x")
                    break
            latencies.append(time.monotonic() - started)
        relay.complete(waiting_key)
        await waiting
        return latencies

    latencies = asyncio.run(scenario())

    print(f"join to first event: {[round(x * 1000, 1) for x in latencies]} ms")
    assert max(latencies) < BLOCK_MS / 1000 / 2


def test_resume_from_an_offset_on_another_process(relay):
    key = uuid.uuid4().hex
    events = [RelayEvent(end, text) for end, text in ((2, "ab"), (4, "cd"), (7, "efg"))]
    for event in events:
        relay.publish(key, event)
    relay.complete(key)
    elsewhere = RedisRelay(REDIS_TEST_URL)  # another web process's relay

    # What was waiting comes as one event (merged), from exactly where the reader was.
    assert asyncio.run(follow_all(elsewhere, key, after=2)) == [RelayEvent(7, "cdefg")]
    assert asyncio.run(follow_all(elsewhere, key, after=7)) == []
    assert asyncio.run(follow_all(relay, key, after=0)) == [RelayEvent(7, "abcdefg")]


def test_followers_go_on_after_the_reader_loses_its_connection(relay, admin, caplog):
    key = uuid.uuid4().hex

    async def scenario() -> list[RelayEvent]:
        follower = asyncio.create_task(follow_all(relay, key))
        relay.publish(key, RelayEvent(1, "a"))
        await asyncio.sleep(0.2)
        for connection in reader_connections(admin):
            admin.client_kill_filter(_id=connection["id"])
        relay.publish(key, RelayEvent(2, "b"))
        relay.complete(key)
        return await follower

    with caplog.at_level(logging.WARNING, logger="generation.relay_redis_reader"):
        received = asyncio.run(scenario())

    assert received == [RelayEvent(1, "a"), RelayEvent(2, "b")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Redis failed" in message for message in warnings)
    assert not any(key in message for message in warnings), "no key material in logs"


def test_publish_sets_the_ttl_once_and_complete_shortens_it(relay, admin, monkeypatch):
    key = uuid.uuid4().hex
    name = relay.stream_name(key)
    pipelines = 0
    make_pipeline = relay._client.pipeline

    def counting_pipeline(*args, **kwargs):
        nonlocal pipelines
        pipelines += 1
        return make_pipeline(*args, **kwargs)

    monkeypatch.setattr(relay._client, "pipeline", counting_pipeline)
    for i in range(1, 6):
        relay.publish(key, RelayEvent(i, "x"))

    assert pipelines == 1, "XADD and EXPIRE for the first event only, then XADD alone"
    assert ACTIVE_TTL - 5 < admin.ttl(name) <= ACTIVE_TTL
    assert admin.xlen(name) == 5

    relay.complete(key)

    assert 0 < admin.ttl(name) <= COMPLETED_TTL
    assert key not in relay._ttl_set


def test_a_publisher_that_restarted_sets_the_ttl_again(relay, admin):
    key = uuid.uuid4().hex
    name = relay.stream_name(key)
    relay.publish(key, RelayEvent(1, "a"))
    admin.persist(name)  # as if this stream had lost its TTL
    restarted = RedisRelay(REDIS_TEST_URL)

    restarted.publish(key, RelayEvent(2, "b"))

    assert admin.ttl(name) > 0
    admin.delete(name)
