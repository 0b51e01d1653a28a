"""The embedded queue's SQLite storage: woken workers, tasks that survive a restart."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from huey.storage import SqliteStorage

from generation.huey_storage import NotifyingSqliteStorage


def test_a_queued_task_survives_a_restart_of_the_process(tmp_path):
    path = str(tmp_path / "huey.sqlite3")
    before = NotifyingSqliteStorage(name="switchboard", filename=path)
    before.enqueue(b"task 1")
    before.close()

    after = NotifyingSqliteStorage(name="switchboard", filename=path, wait_timeout=0.01)
    assert after.dequeue() == b"task 1"
    assert after.dequeue() is None


def test_the_queue_file_is_in_wal_mode_with_full_sync(tmp_path):
    # huey's defaults, kept: a commit waits for its fsync (0.3 ms here), so a queued
    # answer survives a power cut too.
    storage = NotifyingSqliteStorage(name="switchboard", filename=str(tmp_path / "q.sqlite3"))
    assert storage.sql("pragma journal_mode", results=True) == [("wal",)]
    assert storage.sql("pragma synchronous", results=True) == [(2,)]


class _CountingStorage(SqliteStorage):
    """Counts the queue reads that reach SQLite (under NotifyingSqliteStorage's waits)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = 0

    def dequeue(self):
        self.reads += 1
        return super().dequeue()


class _CountedQueue(NotifyingSqliteStorage, _CountingStorage):
    pass


@contextlib.contextmanager
def _idle_workers(storage, count: int) -> Iterator[list[bytes]]:
    """`count` threads taking tasks, as huey's worker threads do; yields what they take."""
    stop, taken = threading.Event(), []

    def work():
        while not stop.is_set():
            data = storage.dequeue()
            if data is not None:
                taken.append(data)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # every thread has gone to wait
    try:
        yield taken
    finally:
        stop.set()
        storage.wake_all()
        for thread in threads:
            thread.join(timeout=2)
    assert not any(thread.is_alive() for thread in threads), "wake_all ends every wait"


def _waiting(storage: NotifyingSqliteStorage) -> int:
    """Worker threads waiting in `storage.dequeue` (the lead and the others)."""
    return len(storage._idle) + (storage._lead is not None)


def _wait_until(predicate, timeout: float = 3.0) -> float:
    """Seconds until `predicate()` held (or the timeout passed)."""
    started = time.monotonic()
    while not predicate() and time.monotonic() - started < timeout:
        time.sleep(0.005)
    return time.monotonic() - started


def test_many_idle_workers_read_the_queue_a_few_times_a_second_not_once_each(tmp_path):
    storage = _CountedQueue(name="q", filename=str(tmp_path / "q.sqlite3"), wait_timeout=0.1)
    with _idle_workers(storage, 32):
        before = storage.reads
        time.sleep(1.0)
        idle_reads = storage.reads - before
    # One lead re-reads every 0.1 s (two reads a round); 32 threads each doing so
    # would be about 640.
    assert idle_reads <= 30, idle_reads


def test_a_burst_of_tasks_is_taken_at_once_by_waiting_workers(tmp_path):
    storage = NotifyingSqliteStorage(name="q", filename=str(tmp_path / "q.sqlite3"))
    with _idle_workers(storage, 16) as taken:
        for n in range(16):
            storage.enqueue(f"task {n}".encode())
        elapsed = _wait_until(lambda: len(taken) == 16)
    assert sorted(taken) == sorted(f"task {n}".encode() for n in range(16))
    assert elapsed < 1.0, "taken without waiting out the idle waits (5 s)"


def test_a_task_queued_by_another_process_is_seen_within_the_short_wait(tmp_path):
    path = str(tmp_path / "q.sqlite3")
    storage = NotifyingSqliteStorage(name="q", filename=path, wait_timeout=0.1)
    elsewhere = NotifyingSqliteStorage(name="q", filename=path)  # no shared condition
    with _idle_workers(storage, 8) as taken:
        elsewhere.enqueue(b"from a command")
        elapsed = _wait_until(lambda: bool(taken))
    assert taken == [b"from a command"]
    assert elapsed < 0.5, elapsed


def test_tasks_one_after_another_go_to_the_thread_that_was_idle_last(tmp_path):
    # That thread's database connection is open: rotating through all the idle
    # threads (a Condition's order) made each answer open a new one.
    storage = NotifyingSqliteStorage(name="q", filename=str(tmp_path / "q.sqlite3"))
    takers: list[str] = []
    stop = threading.Event()

    def work():
        while not stop.is_set():
            if storage.dequeue() is not None:
                takers.append(threading.current_thread().name)

    threads = [threading.Thread(target=work, name=f"w{n}", daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    try:
        for n in range(6):
            _wait_until(lambda: _waiting(storage) == 8)  # the last taker waits again
            storage.enqueue(f"task {n}".encode())
            _wait_until(lambda n=n: len(takers) == n + 1)
    finally:
        stop.set()
        storage.wake_all()
        for thread in threads:
            thread.join(timeout=2)
    assert len(takers) == 6
    assert len(set(takers[1:])) == 1, takers


def test_another_process_s_task_is_seen_while_a_local_one_runs(tmp_path):
    # A local task must not take the one thread that keeps the short wait.
    path = str(tmp_path / "q.sqlite3")
    storage = NotifyingSqliteStorage(name="q", filename=path, wait_timeout=0.1)
    elsewhere = NotifyingSqliteStorage(name="q", filename=path)
    taken: list[tuple[bytes, float]] = []
    stop = threading.Event()

    def work():
        while not stop.is_set():
            data = storage.dequeue()
            if data is not None:
                taken.append((data, time.monotonic()))
                if data == b"slow":
                    time.sleep(2.0)  # an answer being generated

    threads = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait_until(lambda: _waiting(storage) == 4)
        storage.enqueue(b"slow")
        _wait_until(lambda: len(taken) == 1)
        sent = time.monotonic()
        elsewhere.enqueue(b"from a command")
        _wait_until(lambda: len(taken) == 2)
    finally:
        stop.set()
        storage.wake_all()
        for thread in threads:
            thread.join(timeout=3)
    assert [data for data, _ in taken] == [b"slow", b"from a command"]
    assert taken[1][1] - sent < 0.5, "seen within the short wait, not the idle one (5 s)"
