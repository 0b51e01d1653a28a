"""The fake's prompt cache, as Anthropic's works: `cache_control` breakpoints in a request
write the prefix up to the last one; a later request whose blocks begin with a written
prefix reads it. Counted in the fake's 4-characters-a-token measure; no minimum length
(the real API caches only prefixes of 1,024 tokens or more, 2,048 for Haiku)."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PromptCache:
    prefixes: set[str] = field(default_factory=set)  # digests of the prefixes written
    lock: threading.Lock = field(default_factory=threading.Lock)

    def use(self, body: dict[str, Any]) -> tuple[int, int]:
        """(tokens read from the cache, tokens written to it) for a request body."""
        blocks = _blocks(body)
        marked = [i for i, block in enumerate(blocks) if "cache_control" in block]
        if not marked:
            return 0, 0
        last = max(marked)
        digests, sizes, running = [], [], hashlib.sha256()
        for block in blocks[: last + 1]:
            text = json.dumps({k: v for k, v in block.items() if k != "cache_control"})
            running.update(text.encode())
            digests.append(running.hexdigest())
            sizes.append(len(text) // 4)
        with self.lock:
            hit = max((i for i, d in enumerate(digests) if d in self.prefixes), default=-1)
            self.prefixes.update(digests)
        read = sum(sizes[: hit + 1])
        return read, sum(sizes) - read

    def clear(self) -> None:
        with self.lock:
            self.prefixes.clear()


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The system blocks, then every message's blocks, in order (a string is one block)."""
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else []
    blocks += [b for b in system if isinstance(b, dict)] if isinstance(system, list) else []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content, "role": message.get("role")})
        elif isinstance(content, list):
            blocks += [{**b, "role": message.get("role")} for b in content if isinstance(b, dict)]
    return blocks
