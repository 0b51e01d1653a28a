"""The relay backends and the notifying queue storage, on their own."""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
import uuid

import pytest
from huey import SqliteHuey
from huey.consumer import Consumer

from generation.queue import NotifyingSqliteHuey
from generation.relay import InProcessRelay, RelayEvent
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

    assert events == [RelayEvent(5, "de"), RelayEvent(9, "fghi")]
    assert events[0].start == 3


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


def _pickup_latencies(huey, samples: int = 5, idle: float = 1.0) -> list[float]:
    """Seconds from enqueue to a task starting, each after the consumer sat idle."""
    started: list[float] = []

    @huey.task()
    def mark() -> None:
        started.append(time.monotonic())

    consumer = Consumer(huey, workers=1, worker_type="thread", periodic=False)
    consumer._set_signal_handlers = lambda: None  # not ours to take in a test run
    consumer.start()
    latencies = []
    try:
        for _ in range(samples):
            time.sleep(idle)  # long enough for huey's polling backoff to grow
            count = len(started)
            enqueued = time.monotonic()
            mark()
            deadline = time.monotonic() + 15
            while len(started) == count and time.monotonic() < deadline:
                time.sleep(0.0005)
            latencies.append(started[-1] - enqueued)
    finally:
        consumer.stop(graceful=True)
    return latencies


def test_notifying_storage_picks_up_within_milliseconds(tmp_path):
    huey = NotifyingSqliteHuey("latency", filename=str(tmp_path / "q.sqlite3"))
    latencies = _pickup_latencies(huey, samples=5, idle=0.5)
    print(f"notifying SqliteHuey pick-up: {[round(x * 1000, 2) for x in latencies]} ms")
    assert statistics.median(latencies) < 0.02
    assert max(latencies) < 0.1


@pytest.mark.skipif(
    not os.environ.get("MEASURE_QUEUE"), reason="a slow measurement: set MEASURE_QUEUE=1 to run"
)
def test_measure_plain_sqlite_huey_for_comparison(tmp_path):
    huey = SqliteHuey("latency", filename=str(tmp_path / "q.sqlite3"))
    latencies = _pickup_latencies(huey, samples=3, idle=3)
    print(f"plain SqliteHuey pick-up: {[round(x * 1000, 1) for x in latencies]} ms")
