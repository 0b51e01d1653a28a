"""A send lets its answer's worker go first, when that worker shares the web process.

In the embedded deployment the huey worker thread that starts an answer runs in the
web process, under the same GIL as the request that sent it. After its commit, the
send view rendered its partial, and the browser then opened the SSE stream: pure
Python that ran interleaved with the worker's claim, setup and SDK call. A timeline
probe (chat_ttft at 1 conversation) measured the upstream request going out about
4 ms later because of it.

So the view waits, bounded by WAIT_LIMIT, until its answer's request has been handed
to the network (or the answer is over), and renders its response after. The response
comes a few ms later; the first token does not: a provider takes far longer to answer
than the browser takes to open the stream. With the workers in other processes (the
scale-out deployment) there is nothing to wait for, and nothing waits.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# The longest a send waits (a cold connection's handshakes, every worker busy).
WAIT_LIMIT = 0.05
# Marks nobody waits for (an API request, a send whose wait timed out) are dropped
# oldest first past this many.
KEPT_MARKS = 256

_lock = threading.Lock()
_events: OrderedDict[int, threading.Event] = OrderedDict()
_local_consumers = 0


def local_consumer_started() -> None:
    global _local_consumers
    with _lock:
        _local_consumers += 1
        _events.clear()  # an earlier consumer's marks (ids restart in a fresh database)


def local_consumer_stopped() -> None:
    global _local_consumers
    with _lock:
        _local_consumers = max(0, _local_consumers - 1)


def _event(message_id: int) -> threading.Event:
    with _lock:
        event = _events.get(message_id)
        if event is None:
            event = _events[message_id] = threading.Event()
            while len(_events) > KEPT_MARKS:
                _events.popitem(last=False)
        return event


def started(message_id: int) -> None:
    """The answer's request is out, or the answer ended without one: its send may go on."""
    if _local_consumers:
        _event(message_id).set()


def wait_for_start(message_id: int, limit: float | None = None) -> bool:
    """Wait until `started(message_id)`, at most `limit` seconds; False if it did not come.

    Call after the commit that queued the answer. Returns at once when no worker runs
    in this process. `limit` defaults to WAIT_LIMIT.
    """
    if not _local_consumers:
        return True
    came = _event(message_id).wait(WAIT_LIMIT if limit is None else limit)
    with _lock:
        _events.pop(message_id, None)
    return came
