from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from generation.rendering import render_markdown

register = template.Library()


@register.filter
def is_demo(provider: object) -> bool:
    # The "Demo (local)" provider answers with placeholder text: say so wherever it shows.
    from providers.first_run import DEMO_PROVIDER_NAME

    return getattr(provider, "name", None) == DEMO_PROVIDER_NAME


@register.filter
def markdown(text: str) -> SafeString:
    # Safe by construction: raw HTML off in the parser, then the nh3 allow-list.
    return mark_safe(render_markdown(text or ""))  # noqa: S308
