"""Giving a pooled database connection back while a thread waits on something else."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection


def keeps_connections() -> bool:
    """True when a thread keeps its connection (CONN_MAX_AGE, SQLite's default): then
    it belongs to the thread and there is nothing to give back."""
    return bool(connection.settings_dict.get("CONN_MAX_AGE"))


def release_connection() -> None:
    """Return this thread's PostgreSQL connection to the pool now.

    For code that holds a thread for long while it waits on the network (an open SSE
    stream, a generation streaming from upstream): with the connection back in the
    pool, a few connections serve many such waits. The next query takes one again.
    """
    # Never inside an atomic block: that is a test's transaction (or a caller's).
    if keeps_connections() or connection.in_atomic_block:
        return
    connection.close()


async def arelease_connection() -> None:
    # Django connections are per thread: close it on the thread that used it, and do
    # not make that hop at all when there is nothing to give back.
    if not keeps_connections():
        await sync_to_async(release_connection)()
