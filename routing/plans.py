"""Which targets a call to an alias tries, in order (`plan`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
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
    and the rest of the group follow as its fallbacks."""
    rng = rng or random.Random()
    ordered: list[Target] = []
    for _, group in groupby(sorted(targets, key=lambda t: t.priority), key=lambda t: t.priority):
        remaining = list(group)
        while remaining:
            pick = rng.choices(range(len(remaining)), weights=[t.weight for t in remaining])[0]
            ordered.append(remaining.pop(pick))
    return ordered
