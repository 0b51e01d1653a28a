"""Giving a database connection back while a thread waits on something else.

Under ASGI, Django runs each request's sync work on a thread of that request's own, so
persistent connections (CONN_MAX_AGE) are off, as Django's docs ask: a connection lives
as long as its request, or is taken from PostgreSQL's pool and given back.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import connection


def keeps_connections() -> bool:
    """True when a thread keeps its connection (CONN_MAX_AGE set): then it belongs to
    the thread and there is nothing to give back."""
    return bool(connection.settings_dict.get("CONN_MAX_AGE"))


def pooled() -> bool:
    return "pool" in connection.settings_dict.get("OPTIONS", {})


def release_connection() -> None:
    """Close this thread's connection now (a pooled one goes back to the pool).

    For a request that then waits long on the network (an open SSE stream): a thousand
    open streams must not hold a thousand connections (PostgreSQL allows about 100, a
    process a thousand or so open files). The next query opens or takes one again.
    """
    # Never inside an atomic block: that is a test's transaction (or a caller's).
    if keeps_connections() or connection.in_atomic_block:
        return
    connection.close()


def return_pooled_connection() -> None:
    """Give a pooled connection back; any other stays with its thread.

    For a worker thread that queries every fraction of a second between waits (an answer
    streaming from upstream): a pool lets 64 such threads share a few connections,
    while reopening a SQLite connection each time would cost a millisecond apiece.
    """
    if pooled():
        release_connection()


async def arelease_connection() -> None:
    # Django connections are per thread: close it on the thread that used it, and do
    # not make that hop at all when there is nothing to give back.
    if not keeps_connections():
        await sync_to_async(release_connection)()
