"""The stream relay: carries text deltas from the worker generating a message to the
SSE views of every browser watching it.

Two backends behind one interface (relay_base.Relay): in-process (relay_memory, the
embedded deployment) and Redis Streams (relay_redis, scale-out, where workers are
separate processes). `get_relay()` picks one from `settings.REDIS_URL`. Streams are
named by the message's random `stream_key`, not its id: SQLite can reuse the id of a
deleted row, and a new message must never see an old message's events. The relay is a
fan-out of hints; the database row stays the source of truth.
"""

from __future__ import annotations

import threading

from django.conf import settings

from generation.relay_base import Relay, RelayEvent
from generation.relay_memory import InProcessRelay

__all__ = ["Relay", "RelayEvent", "get_relay"]

_relays: dict[str, Relay] = {}
_relays_lock = threading.Lock()


def get_relay() -> Relay:
    """The relay for the current settings (read at call time so tests can switch)."""
    url = settings.REDIS_URL
    with _relays_lock:
        relay = _relays.get(url)
        if relay is None:
            if url:
                # Imported only when used: the embedded deployment never loads redis.
                from generation.relay_redis import RedisRelay

                relay = RedisRelay(url, prefix=f"{settings.REDIS_KEY_PREFIX}:relay:")
            else:
                relay = InProcessRelay()
            _relays[url] = relay
        return relay
