"""The process's one loop for streaming answers: shared, stopped with the consumer, restartable."""

from __future__ import annotations

import asyncio
import threading

from config.embedded_worker import stop_consumer
from generation import stream_loop


async def _where() -> tuple[asyncio.AbstractEventLoop, str]:
    return asyncio.get_running_loop(), threading.current_thread().name


def test_every_caller_thread_gets_the_same_loop():
    seen = []

    def submit() -> None:
        seen.append(stream_loop.submit(_where()).result(5))

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert len(seen) == 3
    assert len({loop for loop, _ in seen}) == 1
    assert {name for _, name in seen} == {"stream-loop"}


def test_stop_ends_the_loop_and_the_next_answer_starts_another():
    first, _ = stream_loop.submit(_where()).result(5)
    stream_loop.stop()

    assert first.is_closed()
    assert not any(t.name == "stream-loop" and t.is_alive() for t in threading.enumerate())
    second, _ = stream_loop.submit(_where()).result(5)
    assert second is not first
    assert second.is_running()


def test_the_embedded_consumer_stops_the_loop_when_it_stops(huey_consumer):
    loop, _ = stream_loop.submit(_where()).result(5)

    stop_consumer(huey_consumer)

    assert loop.is_closed()
