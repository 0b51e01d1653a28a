"""What the chat shows about money before and after a send: the most a send may cost
(exactly what the budget would hold for it) and a conversation's running total."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms

from generation.forms import ComposerForm
from generation.models import COST_ANNOTATIONS, Conversation, Message
from generation.routes import alias_route, direct_route
from generation.services import active_history, chat_request, chat_thinking
from providers.validation import InvalidRequest, check_request
from routing.services import AliasUnavailable
from usage.budgets import hold_nanos
from usage.models import nanos_to_usd

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from generation.presets import Preset
    from providers.models import Provider
    from routing.models import Alias


class EstimateForm(ComposerForm):
    """The composer as it stands: a blank message is fine (the history still costs)."""

    def clean(self) -> dict[str, Any]:
        return forms.Form.clean(self) or {}


@dataclass(frozen=True)
class Estimate:
    model: str
    nanos: int | None  # None: the model has no price
    error: str = ""  # the request as it stands would be refused (e.g. too long)

    @property
    def cost(self) -> Decimal | None:
        return nanos_to_usd(self.nanos)


def estimate_send(
    *,
    user: User,
    conversation: Conversation | None,
    text: str,
    provider: Provider | None,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    system_prompt: str = "",
    preset: Preset | None = None,
    alias: Alias | None = None,
) -> Estimate:
    """The worst-case cost a send of `text` would hold: the same request
    generation.services.send_message builds (the chat's active branch, its system
    prompt and thinking), costed by the same `hold_nanos` as `reserve_budget`. Files not
    yet sent are not counted: they are uploaded with the message. With `alias`, the hold
    of the costliest target the alias may reach, as the send holds."""
    try:
        if alias is not None:
            route = alias_route(alias=alias)
        elif provider is not None:
            route = direct_route(provider=provider, model=model)
        else:
            return Estimate(model="", nanos=None, error="Pick a provider or an alias.")
    except AliasUnavailable as exc:
        return Estimate(model=alias.name if alias else "", nanos=None, error=exc.message)
    prior: list[Message] = []
    if conversation is not None:
        system_prompt = conversation.system_prompt
        prior = active_history(conversation)
    request = chat_request(
        conversation=conversation,
        prior=prior,
        text=text,
        attached=[],
        provider=route.provider,
        model=route.model,
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        thinking=chat_thinking(conversation=conversation, preset=preset),
    )
    try:
        # The checks that need no model list (never fetched while typing).
        request = check_request(route.provider, request, known_models=None)
    except InvalidRequest as exc:
        return Estimate(model=request.model, nanos=None, error=exc.message)
    held, held_model = route.held_target(request)
    nanos = hold_nanos(provider=held, request=replace(request, model=held_model))
    return Estimate(model=route.alias_name or request.model, nanos=nanos)


@dataclass(frozen=True)
class RunningTotal:
    attempts: int  # upstream attempts metered in this chat, every version included
    unpriced: int
    nanos: int

    @property
    def cost(self) -> Decimal:
        return nanos_to_usd(self.nanos)


def running_total(*, conversation: Conversation) -> RunningTotal:
    """What a chat has cost so far: every metered attempt of its answers (regenerated
    versions and failed attempts included: they were billed). Summed with the same
    expressions as MessageQuerySet.with_cost, over the whole chat in one query."""
    row = Message.objects.filter(conversation=conversation).aggregate(**COST_ANNOTATIONS)
    return RunningTotal(
        attempts=int(row["metered_attempts"] or 0),
        unpriced=int(row["unpriced_attempts"] or 0),
        nanos=int(row["cost_nanos"] or 0),
    )
