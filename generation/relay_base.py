"""What every stream relay backend shares: the event, the interface, the limits.

Event ids are text offsets: an event with id N ends at character N of the message's
reasoning followed by its answer (one offset space: a model's reasoning always comes
before its answer), so `id - len(text)` is where it starts, and `reasoning` says which
of the two it belongs to. The database keeps the same texts, which makes a resume exact:
a client that saw id N needs `(reasoning + content)[N:]`, wherever it comes from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

# How long a finished message's events stay readable for late or reconnecting readers.
COMPLETED_TTL = 120.0
# How long an unfinished stream's events stay around if its worker vanished.
ACTIVE_TTL = 3600.0
MAX_EVENTS = 20_000  # per message; older ones are read back from the database


@dataclass(frozen=True)
class RelayEvent:
    id: int  # text offset where this delta ends
    text: str
    reasoning: bool = False  # a piece of the thinking, not of the answer

    @property
    def start(self) -> int:
        return self.id - len(self.text)


class Relay(Protocol):
    def publish(self, key: str, event: RelayEvent) -> None: ...

    async def apublish(self, key: str, event: RelayEvent) -> None:
        """`publish` from an event loop (the stream loop), without blocking it."""

    async def aclose_publisher(self) -> None:
        """Close what `apublish` opened on the running loop (before the loop closes)."""

    def complete(self, key: str) -> None:
        """Mark the stream finished: readers drain what is left and stop."""

    def request_cancel(self, key: str) -> None: ...

    def cancel_requested(self, key: str) -> bool: ...

    def ping(self) -> None:
        """Raise if the relay cannot be reached (for /healthz)."""

    def follow(self, key: str, *, after: int, idle: float) -> AsyncIterator[RelayEvent | None]:
        """Yield events with id > after as they arrive, None after `idle` seconds
        without any (time for a heartbeat), and stop once the stream is complete."""
        ...


def merge_contiguous(events: list[RelayEvent]) -> list[RelayEvent]:
    """Deltas that follow each other as one: a reader that fell behind (a busy server)
    catches up with one SSE frame, not one per token. Offsets keep it exact; reasoning
    and answer stay apart."""
    merged: list[RelayEvent] = []
    for event in events:
        last = merged[-1] if merged else None
        if last is not None and event.start == last.id and event.reasoning == last.reasoning:
            merged[-1] = RelayEvent(event.id, last.text + event.text, event.reasoning)
        else:
            merged.append(event)
    return merged
