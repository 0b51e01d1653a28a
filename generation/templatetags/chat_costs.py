"""The chat's running total, rendered with the page (then refreshed over HTMX)."""

from __future__ import annotations

from django import template

from generation.estimates import RunningTotal, running_total
from generation.models import Conversation

register = template.Library()


@register.inclusion_tag("generation/_conversation_cost_box.html")
def conversation_cost(conversation: Conversation | None) -> dict[str, RunningTotal | None]:
    """The box, with the total of `conversation` (none yet for a new chat)."""
    if conversation is None:
        return {"total": None}
    return {"total": running_total(conversation=conversation)}
