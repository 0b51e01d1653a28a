"""A send lets its answer's worker reach upstream before it renders its response.

After its commit, the send view rendered its partial, and the browser then opened the
SSE stream: work that ran while the worker claimed the answer, loaded it and made the
SDK call, and that competed with it for the CPU. In the embedded deployment the
worker is a thread of the same process, under the same GIL; in the scale-out one, the
web process, the worker, PostgreSQL and the browser share the machine's cores. A
timeline probe (chat_ttft at 1 conversation) measured the upstream request going out
about 4 ms later because of it, in either deployment.

So the view waits, bounded by WAIT_LIMIT, until the worker has handed its answer's
request to the network (or the answer is over), and renders after. The relay carries
the mark (`mark_started` / `wait_started`): in memory, or a Redis list the view
BLPOPs. The response comes a few ms later; the first token does not, since a provider
takes far longer to answer than the browser takes to open the stream.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from config.db import release_connection
from generation.models import Message
from generation.relay import get_relay

# The longest a send waits (a cold connection's handshakes, every worker busy).
WAIT_LIMIT = 0.05

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_local_consumers = 0


def local_consumer_started() -> None:
    global _local_consumers
    with _lock:
        _local_consumers += 1


def local_consumer_stopped() -> None:
    global _local_consumers
    with _lock:
        _local_consumers = max(0, _local_consumers - 1)


def _no_worker_can_start_it() -> bool:
    # The embedded deployment without its consumer running (stopping, or a test):
    # nobody would mark the answer started.
    return settings.EMBEDDED_WORKER and not _local_consumers


def wait_for_start(message: Message) -> bool:
    """Wait until `message`'s worker has sent its request upstream, at most WAIT_LIMIT
    seconds; False if that did not happen in time. Call after the commit that queued it.
    """
    if _no_worker_can_start_it():
        return True
    release_connection()  # a pooled PostgreSQL connection need not wait with us
    try:
        return get_relay().wait_started(message.relay_key, WAIT_LIMIT)
    except Exception as exc:
        # The answer is committed and queued: the send must still answer (a 500 would
        # invite a resend, a second answer billed again).
        logger.warning(
            "Waiting for the start of message %s failed: %s", message.pk, type(exc).__name__
        )
        return False
