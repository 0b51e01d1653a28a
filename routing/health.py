"""Target health: a target that keeps failing is tried last for a while (a cooldown).

A target (provider + model) whose attempts failed with a kind the next target could avoid
(`routing.engine.FALLBACK_KINDS`) HEALTH_FAILURES times within HEALTH_WINDOW_SECONDS cools
down for HEALTH_COOLDOWN_SECONDS: plans put it after every healthy target, and among
cooling targets the least recently failed first, so a call whose targets all cool still
makes a call. A success clears the target's count and cooldown.

State lives in Django's cache, so every process sees it (locmem in the embedded
deployment, where the web server and its worker threads are one process; Redis in
scale-out). Two keys per target:

- ``...:n``: failures in the current window, created by ``add(0, timeout=window)`` and
  bumped by ``incr`` (atomic on locmem and Redis; neither changes the key's expiry), so the
  window is fixed from the first failure and concurrent failures each count once.
- ``...:cool``: present while cooling; its value is the time of the last failure.

Why races do no harm: the count is only bumped atomically; the cooldown key is set by
whichever failure reached the threshold (or failed while cooling), and concurrent
setters write near-identical times. A success read against a slightly stale snapshot may
clear a failure another process just recorded, or miss one: health is a hint for the
order of a plan, never a refusal (`plan` tries cooling targets too), so the worst case is
one call trying a failing target first, as it would without health at all.

The plan reads both keys of every target in one ``get_many`` (`annotate`): one cache round
trip per call, no ORM, cheap enough for the gateway's event loop on locmem. Outcomes are
written (`arecord`) only when there is something to write: a failure, or a success of a
target the snapshot saw failing; from async code in a worker thread, never blocking the
event loop on Redis.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

if TYPE_CHECKING:
    from providers.adapters.base import Attempt
    from routing.plans import Target

DEFAULTS = {
    "HEALTH_FAILURES": 3,
    "HEALTH_WINDOW_SECONDS": 60,
    "HEALTH_COOLDOWN_SECONDS": 60,
}
_PREFIX = "switchboard:routing:health"
logger = logging.getLogger("routing")


@dataclass(frozen=True)
class Thresholds:
    failures: int
    window: float  # seconds
    cooldown: float  # seconds

    @classmethod
    def from_settings(cls) -> Thresholds:
        configured = settings.SWITCHBOARD
        value = {name: configured.get(name, default) for name, default in DEFAULTS.items()}
        return cls(
            failures=max(1, int(value["HEALTH_FAILURES"])),
            window=max(0.001, float(value["HEALTH_WINDOW_SECONDS"])),
            cooldown=max(0.001, float(value["HEALTH_COOLDOWN_SECONDS"])),
        )


@lru_cache(maxsize=4096)
def target_key(provider_id: object, model: str) -> str:
    # A digest of the model: names come from staff and may hold spaces or be long.
    # Memoized: planning builds these keys for every routed call.
    digest = hashlib.blake2b(model.encode(), digest_size=8).hexdigest()
    return f"{_PREFIX}:{provider_id}:{digest}"


def cooling_since(keys: Sequence[tuple[object, str]]) -> dict[tuple[object, str], float]:
    """(provider id, model) -> time of the last failure, for those cooling now (one read)."""
    wanted = {f"{target_key(pid, model)}:cool": (pid, model) for pid, model in keys}
    found = _read(list(wanted)) if wanted else {}
    return {wanted[key]: float(value) for key, value in found.items()}


def _read(keys: list[str]) -> dict[str, Any]:
    # Health is a hint: with the cache unreachable, every target counts as healthy and
    # the call goes on (the cache's error names no key or prompt, only its type is logged).
    try:
        return dict(cache.get_many(keys))
    except Exception as exc:
        logger.warning("routing health not read: %s", type(exc).__name__)
        return {}


def annotate(targets: list[Target]) -> list[Target]:
    """`targets` with the health each has now (`Target.recent_failures`, `cooling_since`):
    one cache round trip for all of them."""
    if not targets:
        return targets
    keys = {id(t): target_key(t.provider.pk, t.model) for t in targets}
    found = _read([f"{k}:{part}" for k in keys.values() for part in ("n", "cool")])
    if not found:
        return [replace(t, recent_failures=0, cooling_since=None) for t in targets]
    out = []
    for t in targets:
        key = keys[id(t)]
        cool = found.get(f"{key}:cool")
        out.append(
            replace(
                t,
                recent_failures=int(found.get(f"{key}:n") or 0),
                cooling_since=None if cool is None else float(cool),
            )
        )
    return out


def annotate_many(groups: dict[str, list[Target]]) -> dict[str, list[Target]]:
    """`annotate` for several lists (the gateway's aliases), still in one round trip."""
    flat = annotate([t for targets in groups.values() for t in targets])
    out, at = {}, 0
    for name, targets in groups.items():
        out[name] = flat[at : at + len(targets)]
        at += len(targets)
    return out


def is_failure(outcome: str) -> bool:
    from routing.engine import FALLBACK_KINDS  # the engine imports this module

    return outcome in FALLBACK_KINDS


def record(target: Target, attempts: Iterable[Attempt], *, now: float | None = None) -> None:
    """Count `attempts` (made at `target`) against its health: each failure of a fallback
    kind counts; a success clears the count and any cooldown. Writes nothing when nothing
    changes (a success of a target that was healthy when planned)."""
    outcomes = [a.outcome for a in attempts]
    failures = sum(1 for outcome in outcomes if is_failure(outcome))
    succeeded = "ok" in outcomes
    key = target_key(target.provider.pk, target.model)
    if succeeded:
        if target.recent_failures or target.cooling_since is not None:
            cache.delete_many([f"{key}:n", f"{key}:cool"])
        return
    if not failures:
        return
    limits = Thresholds.from_settings()
    count = _bump(f"{key}:n", failures, limits.window)
    if count >= limits.failures or target.cooling_since is not None:
        # (Re)start the cooldown; a target tried while cooling that fails again also
        # moves behind the other cooling targets ("least recently failed" first).
        stamp = time.time() if now is None else now
        cache.set(f"{key}:cool", stamp, timeout=limits.cooldown)


def _bump(key: str, by: int, window: float) -> int:
    cache.add(key, 0, timeout=window)
    try:
        return int(cache.incr(key, by))
    except ValueError:  # the window ended between add and incr: a new one
        cache.add(key, by, timeout=window)
        return by


def has_news(target: Target, attempts: Iterable[Attempt]) -> bool:
    """Whether `record` would write anything: a failure, or a success of a target the
    plan saw failing. False on the hot path (a healthy target answered)."""
    if target.recent_failures or target.cooling_since is not None:
        return True
    return any(is_failure(a.outcome) for a in attempts)


async def arecord(target: Target, attempts: list[Attempt]) -> None:
    """`record` from async code, on a worker thread (a Redis round trip must not block
    the event loop)."""
    await sync_to_async(record, thread_sensitive=False)(target, attempts)


def cooling_targets(provider_ids: Iterable[object]) -> dict[object, dict[str, float]]:
    """provider id -> {model: time of its last failure} for the alias targets of these
    providers cooling down now: one query and one cache read (for the provider admin)."""
    from routing.models import AliasTarget  # the models import nothing of this module

    rows = AliasTarget.objects.filter(provider_id__in=list(provider_ids))
    keys = list(rows.values_list("provider_id", "model").distinct().order_by())
    out: dict[object, dict[str, float]] = {}
    for (pid, model), since in cooling_since(keys).items():
        out.setdefault(pid, {})[model] = since
    return out
