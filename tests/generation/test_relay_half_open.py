"""A Redis relay whose server stops answering (a half-open connection) fails its
commands within the relay's timeout instead of holding the worker thread forever."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from generation.relay_base import RelayEvent
from generation.relay_redis import RedisRelay


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that accepts connections and never answers a byte: what
    a client sees of a Redis behind a dead link (no FIN, no RST)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_cancel_check_fails_within_the_timeout(silent_server):
    relay = RedisRelay(silent_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        relay.cancel_requested("some-answer")
    assert time.monotonic() - started < 3


def test_a_publish_fails_within_the_timeout(silent_server):
    relay = RedisRelay(silent_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        relay.publish("some-answer", RelayEvent(2, "hi"))
    assert time.monotonic() - started < 3


def test_a_publish_from_the_stream_loop_fails_within_the_timeout(silent_server):
    relay = RedisRelay(silent_server, timeout=0.5)

    async def publish() -> None:
        try:
            await relay.apublish("some-answer", RelayEvent(2, "hi"))
        finally:
            await relay.aclose_publisher()

    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        asyncio.run(publish())
    assert time.monotonic() - started < 3
