"""Aliases as the request paths use them (sync: the ORM)."""

from __future__ import annotations

from routing import health
from routing.models import Alias, AliasTarget
from routing.plans import Target, plan, targets_of


class AliasUnavailable(Exception):
    """An active alias none of whose targets can be called now. `message` is for users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def active_aliases() -> list[Alias]:
    return list(Alias.objects.filter(is_active=True).prefetch_related("targets__provider"))


def planned_targets(alias: Alias) -> list[Target]:
    """The order a call to `alias` tries its targets now (cooling targets last), or
    AliasUnavailable."""
    return plan_or_refuse(alias.name, health.annotate(targets_of(alias)))


def find_alias(name: str) -> Alias | None:
    """The active alias called `name`, or None."""
    return Alias.objects.filter(name=name, is_active=True).first()


def alias_targets() -> dict[str, list[Target]]:
    """Every active alias's targets with an active provider (lowest group first), by name;
    an alias with none maps to an empty list; each target with its health now. Two
    queries and one cache read, for a path that plans later without the ORM or the cache
    (the /v1 gateway, from the event loop)."""
    found: dict[str, list[Target]] = {
        name: [] for name in Alias.objects.filter(is_active=True).values_list("name", flat=True)
    }
    rows = AliasTarget.objects.filter(alias__is_active=True, provider__is_active=True)
    for row in rows.select_related("alias", "provider").order_by("priority", "pk"):
        found[row.alias.name].append(
            Target(provider=row.provider, model=row.model, priority=row.priority, weight=row.weight)
        )
    return health.annotate_many(found)


def plan_or_refuse(name: str, targets: list[Target]) -> list[Target]:
    """`plan` for the alias `name`, or AliasUnavailable when it has no target to call."""
    if not targets:
        raise AliasUnavailable(
            f"The alias {name!r} has no target with an active provider. "
            "Ask an administrator to check it in the admin."
        )
    return plan(targets)
