"""The chat's running total, rendered with the page (then refreshed over HTMX)."""

from __future__ import annotations

from django import template

from generation.estimates import RunningTotal, running_total
from generation.models import Conversation

register = template.Library()


@register.inclusion_tag("generation/_conversation_cost_box.html")
def conversation_cost(conversation: Conversation) -> dict[str, Conversation | RunningTotal]:
    return {"conversation": conversation, "total": running_total(conversation=conversation)}
