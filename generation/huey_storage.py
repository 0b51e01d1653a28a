"""huey's SQLite storage, with idle workers that wait to be woken instead of polling.

huey's SqliteStorage is non-blocking, so an idle consumer sleeps with exponential
backoff (up to `max_delay`, 10 s by default) between polls: a chat message enqueued
during such a sleep waits that long before any token is generated. Here `dequeue`
blocks on an event that `enqueue` in the same process sets, so the
embedded consumer picks a task up within a millisecond or so. A short timed wait
remains so that tasks enqueued by other processes (a management command, a second
server) are still seen, only a little later. The most recently idle worker is woken
first (its database connection is warm).

Each worker thread runs one generation at a time, so there are many (HUEY_WORKERS,
64 by default). Only one idle thread at a time, the lead, makes that short timed wait;
the others wait longer (IDLE_WAIT), so an idle server does not query the queue a few
hundred times a second. `wake_all` (on shutdown) ends every wait at once.

Stock SqliteHuey cannot do this: its dequeue returns at once on an empty queue, and
every idle worker thread polls, sleeping between polls by the consumer's documented
options (initial_delay, backoff, max_delay). The threads poll in step, so a task waits
a good part of max_delay: tests/bench/bench_queue_wake.py measured a p50 of 63 ms at
max_delay 0.5 s, 8 ms at 0.1 s (4.6% of a core while idle, 64 threads) and 4.9 ms at
0.05 s (9.5%); this storage, 2 ms and 0.3%, with no polling. It overrides only the
storage interface's public methods (enqueue, dequeue, flush_queue) and sets the
documented `blocking` flag, which tells the consumer not to sleep between dequeues.

Settings: HUEY["huey_class"] = "generation.huey_storage.NotifyingSqliteHuey".
"""

from __future__ import annotations

import threading
from typing import Any

from huey import SqliteHuey
from huey.storage import SqliteStorage

# Upper bound on how long a task enqueued by another process waits to be seen.
CROSS_PROCESS_WAIT = 0.25
# How long the other idle threads wait, when nothing in this process wakes them.
IDLE_WAIT = 5.0


class NotifyingSqliteStorage(SqliteStorage):  # type: ignore[misc]  # huey ships no types
    # Tells the consumer not to sleep between empty dequeues: we wait in here.
    blocking = True

    def __init__(self, *args: Any, wait_timeout: float = CROSS_PROCESS_WAIT, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.wait_timeout = wait_timeout
        self._lock = threading.Lock()
        # Bumped on every enqueue; a worker that saw an empty queue waits only while
        # it is unchanged, so an enqueue between its check and its wait is not lost.
        self._generation = 0
        # The lead's wake-up event: the one idle thread that makes the short wait.
        self._lead: threading.Event | None = None
        # The other idle workers' wake-up events, the most recently idle last. An
        # enqueue wakes that one: its thread has run a task moments ago, so its database
        # connection is open and warm. Waking the longest idle (a Condition's order)
        # rotated tasks through all the threads, and each then opened a connection.
        self._idle: list[threading.Event] = []

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        super().enqueue(data, priority)
        with self._lock:
            self._generation += 1
            # The lead only if nobody else waits: it must keep watching for tasks that
            # other processes queue while the woken thread runs this one.
            if self._idle:
                self._idle.pop().set()
            elif self._lead is not None:
                self._lead.set()

    def dequeue(self) -> bytes | None:
        with self._lock:
            seen = self._generation
        data: bytes | None = super().dequeue()
        if data is not None:
            return data
        wake = threading.Event()
        with self._lock:
            waits = self._generation == seen  # else: enqueued meanwhile, look again now
            lead = waits and self._lead is None
            if lead:
                self._lead = wake
            elif waits:
                self._idle.append(wake)
        if waits:
            try:
                wake.wait(self.wait_timeout if lead else IDLE_WAIT)
            finally:
                with self._lock:
                    if lead:
                        self._lead = None
                    elif wake in self._idle:
                        self._idle.remove(wake)  # timed out: nobody popped it
        # Woken by an enqueue, timed out, or a task came meanwhile: look once more,
        # and otherwise let the consumer loop come back (it checks its stop flag).
        data = super().dequeue()
        return data

    def flush_queue(self) -> None:
        super().flush_queue()
        self.wake_all()

    def wake_all(self) -> None:
        """End every idle wait now (a consumer stopping checks its flag sooner)."""
        with self._lock:
            self._generation += 1
            for wake in self._idle:
                wake.set()
            self._idle.clear()
            if self._lead is not None:
                self._lead.set()


class NotifyingSqliteHuey(SqliteHuey):  # type: ignore[misc]  # huey ships no types
    storage_class = NotifyingSqliteStorage
