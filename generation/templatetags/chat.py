from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from generation.rendering import render_markdown
from generation.search import Snippet

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


@register.filter
def highlighted(segments: Snippet) -> SafeString:
    """A search hit's text: every segment escaped, the matched ones in <mark>. (Rendered
    here, not with a template loop: twenty hits of a dozen segments took 15 ms there.)"""
    pieces = (format_html("<mark>{}</mark>", s.text) if s.marked else s.text for s in segments)
    return format_html_join("", "{}", ((piece,) for piece in pieces))
