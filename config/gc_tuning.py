"""Keep the garbage collector's pauses short in long-running server processes.

CPython's cyclic collector stops the interpreter while it walks the objects of the
generations it collects. Two things made those pauses long in a Switchboard process:

- A Django server holds a few hundred thousand objects from its imports alone
  (modules, classes, URL patterns, templates), none of which ever becomes garbage, and
  every full (generation 2) pass walked them all again.
- The default thresholds (700 allocations, then 10 and 10 passes) are made for small
  scripts: a server that opens 1,000 streams grows its heap fast, which kept
  triggering full passes (each time the long-lived objects had grown by a quarter).

In bench_streams_held, a web process holding 1,000 SSE streams made full passes of
50-215 ms, and every stream stalled for that long (embedded: gap p95 137 ms, p99
339 ms, against an upstream's 100 ms; scale-out: 5 full passes in the 8 s window).

`tune_for_server()` moves what exists once the app is loaded into the collector's
permanent generation, which its passes skip (frozen objects are still freed by
reference counting when they die), and raises the thresholds: a young pass every
20,000 allocations, a middle one every 50 of those, a full one after 100 middle ones.
Reference counting frees almost everything a request makes; the collector is only
for cycles, which wait a little longer. After it, both deployments held the 1,000
streams (gap p95 112-125 ms, no full pass in the window), and at 10 chat
conversations the added time to first token's p99 fell from 362 to 202 ms and the
CPU per conversation from 42.5 to 35.3 ms.
"""

from __future__ import annotations

import gc
import threading

THRESHOLDS = (20_000, 50, 100)

_lock = threading.Lock()
_frozen = False


def tune_for_server() -> None:
    """Call once the process has imported what it serves with (URLconf, views, tasks):
    config/asgi.py for a web process, our `run_huey` for a worker. Only the first call
    does anything."""
    global _frozen
    with _lock:
        if _frozen:
            return
        _frozen = True
        gc.collect()  # what startup left as garbage is freed, not frozen
        gc.freeze()
        gc.set_threshold(*THRESHOLDS)
