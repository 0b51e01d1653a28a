"""Where each attempt of a call routed through an alias stands in it (`RoutingStep`)."""

from __future__ import annotations

from providers.adapters.base import Attempt
from usage.models import RoutingStep


def routing_steps(attempts: list[Attempt]) -> list[str]:
    """Each attempt's `RoutingStep` in a routed call: the routing engine makes one attempt
    per target it leaves (retries stay with the last target), so every attempt at a target
    other than the last attempt's is a fallback from it."""

    def target(attempt: Attempt) -> tuple[object, str]:
        return (attempt.provider.pk if attempt.provider else None, attempt.model)

    answering = target(attempts[-1])
    fell_back = any(target(a) != answering for a in attempts)
    steps: list[str] = [
        RoutingStep.FELL_BACK if target(a) != answering else RoutingStep.NONE for a in attempts[:-1]
    ]
    steps.append(RoutingStep.LAST_AFTER_FALLBACK if fell_back else RoutingStep.LAST)
    return steps
