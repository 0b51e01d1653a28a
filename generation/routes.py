"""What answers a chat message: a provider and its model, or an alias (routing) whose
planned targets the worker tries in turn (`routing.engine.stream_routed`).

The send checks the request against the first target of the plan (as the API does),
and holds budget for the costliest target the call may reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from routing.services import AliasUnavailable, planned_targets
from usage.budgets import costliest, output_tokens_to_hold, prompt_tokens_to_hold

if TYPE_CHECKING:
    from providers.adapters.base import GenerationRequest
    from providers.models import Provider
    from routing.models import Alias
    from routing.plans import Target


@dataclass(frozen=True)
class Route:
    """`provider` and `model`: the one to answer, or an alias's first target (requests
    are checked against it); `targets`: the alias's plan, empty for a direct route."""

    provider: Provider
    model: str
    alias: Alias | None = None
    targets: tuple[Target, ...] = ()

    @property
    def alias_name(self) -> str:
        return self.alias.name if self.alias is not None else ""

    def held_target(self, request: GenerationRequest) -> tuple[Provider, str]:
        """The provider and model whose worst case the budget hold covers: the costliest
        target an alias's call may reach, or the route's own model."""
        if not self.targets:
            return self.provider, request.model
        return costliest(
            [(target.provider, target.model) for target in self.targets],
            max_tokens=output_tokens_to_hold(request),
            prompt_tokens=prompt_tokens_to_hold(request),
        )


def direct_route(*, provider: Provider, model: str) -> Route:
    return Route(provider=provider, model=model or provider.effective_default_model)


def alias_route(*, alias: Alias) -> Route:
    """The route through `alias` as planned now, or AliasUnavailable (its `message` is
    for users) when it is switched off or has no target with an active provider."""
    if not alias.is_active:
        raise AliasUnavailable(f"The alias {alias.name!r} is no longer available.")
    targets = planned_targets(alias)
    first = targets[0]
    return Route(provider=first.provider, model=first.model, alias=alias, targets=tuple(targets))
