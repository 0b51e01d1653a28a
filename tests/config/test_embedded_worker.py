"""The huey consumer inside the web process: many worker threads, a prompt stop."""

from __future__ import annotations

import time

import pytest
from huey.contrib.djhuey import HUEY

from config.embedded_worker import EmbeddedConsumer
from generation.queue import NotifyingSqliteStorage


def test_an_idle_consumer_with_many_threads_stops_at_once():
    if not isinstance(HUEY.storage, NotifyingSqliteStorage):
        pytest.skip("the embedded SQLite queue (Redis workers are run_huey processes)")
    consumer = EmbeddedConsumer(HUEY, workers=16, worker_type="thread", periodic=False)
    consumer.start()
    time.sleep(0.5)  # the idle threads are in their long waits (generation/queue.py)
    assert sum(thread.is_alive() for _, thread in consumer.worker_threads) == 16

    started = time.monotonic()
    consumer.stop(graceful=True)
    elapsed = time.monotonic() - started

    assert not any(thread.is_alive() for _, thread in consumer.worker_threads)
    assert elapsed < 1.0, f"stopping took {elapsed:.1f} s (an idle wait is 5 s)"
