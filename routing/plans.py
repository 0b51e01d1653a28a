"""Which targets a call to an alias tries, in order (`plan`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.models import Provider
    from routing.models import Alias


@dataclass(frozen=True)
class Target:
    """One provider and model an alias may route a call to."""

    provider: Provider
    model: str
    priority: int = 1
    weight: int = 1
    # Its health when the call was planned (`routing.health.annotate`): failures counted
    # in the current window, and the time of the last failure while it cools down.
    recent_failures: int = field(default=0, compare=False)
    cooling_since: float | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


def targets_of(alias: Alias) -> list[Target]:
    """The alias's targets with an active provider, lowest priority group first (sync:
    the ORM)."""
    rows = alias.targets.select_related("provider").filter(provider__is_active=True)
    return [
        Target(provider=row.provider, model=row.model, priority=row.priority, weight=row.weight)
        for row in rows.order_by("priority", "pk")
    ]


def plan(targets: list[Target], rng: random.Random | None = None) -> list[Target]:
    """The order a call tries `targets`: priority groups in order; within a group a
    weighted draw without replacement, so the first is chosen by weight (spreading load)
    and the rest of the group follow as its fallbacks. Targets cooling down
    (`routing.health`) come after all the others, the least recently failed first: when
    every target cools, that one is still tried rather than failing without a call."""
    rng = rng or random.Random()
    ordered: list[Target] = []
    for _, group in groupby(sorted(targets, key=lambda t: t.priority), key=lambda t: t.priority):
        remaining = list(group)
        while remaining:
            pick = rng.choices(range(len(remaining)), weights=[t.weight for t in remaining])[0]
            ordered.append(remaining.pop(pick))
    cooling = [t for t in ordered if t.cooling_since is not None]
    if not cooling:
        return ordered
    healthy = [t for t in ordered if t.cooling_since is None]
    return healthy + sorted(cooling, key=lambda t: t.cooling_since or 0.0)
