"""Aliases as the request paths use them (sync: the ORM)."""

from __future__ import annotations

from routing.models import Alias
from routing.plans import Target, plan, targets_of


class AliasUnavailable(Exception):
    """An active alias none of whose targets can be called now. `message` is for users."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def active_aliases() -> list[Alias]:
    return list(Alias.objects.filter(is_active=True).prefetch_related("targets__provider"))


def planned_targets(alias: Alias) -> list[Target]:
    """The order a call to `alias` tries its targets now, or AliasUnavailable."""
    targets = targets_of(alias)
    if not targets:
        raise AliasUnavailable(
            f"The alias {alias.name!r} has no target with an active provider. "
            "Ask an administrator to check it in the admin."
        )
    return plan(targets)


def find_alias(name: str) -> Alias | None:
    """The active alias called `name`, or None."""
    return Alias.objects.filter(name=name, is_active=True).first()
