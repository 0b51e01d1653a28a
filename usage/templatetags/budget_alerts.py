"""The chat's budget banner: this month's 80% / 100% alerts of the user and their teams."""

from __future__ import annotations

from typing import Any

from django import template

from usage.alerts import current_alerts

register = template.Library()


@register.inclusion_tag("usage/_budget_banner.html", takes_context=True)
def budget_banner(context: template.Context) -> dict[str, Any]:
    user = context["request"].user
    if not user.is_authenticated:
        return {"alerts": []}
    group_ids = list(user.groups.values_list("pk", flat=True))
    return {"alerts": current_alerts(user_id=user.pk, group_ids=group_ids)}
