"""The embedded queue's SQLite storage: quick commits that still survive a restart."""

from __future__ import annotations

from generation.queue import NotifyingSqliteStorage


def test_a_queued_task_survives_a_restart_of_the_process(tmp_path):
    path = str(tmp_path / "huey.sqlite3")
    before = NotifyingSqliteStorage(name="switchboard", filename=path)
    before.enqueue(b"task 1")
    before.close()

    after = NotifyingSqliteStorage(name="switchboard", filename=path, wait_timeout=0.01)
    assert after.dequeue() == b"task 1"
    assert after.dequeue() is None


def test_commits_do_not_wait_for_an_fsync_but_the_file_stays_consistent(tmp_path):
    storage = NotifyingSqliteStorage(name="switchboard", filename=str(tmp_path / "q.sqlite3"))
    # WAL + NORMAL: crash-safe for the process, consistent after a power loss.
    assert storage.sql("pragma journal_mode", results=True) == [("wal",)]
    assert storage.sql("pragma synchronous", results=True) == [(1,)]
