from __future__ import annotations

from html import escape

from django import template
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
    """A search hit's text: every segment escaped, the matched ones in <mark>. Safe by
    construction: all text passes escape(), and only the <mark> tags are ours. (Not a
    template loop, nor format_html per segment: a page of hits for a common word took
    15 and 2 ms of the request that way.)"""
    html = "".join(
        f"<mark>{escape(s.text)}</mark>" if s.marked else escape(s.text) for s in segments
    )
    return mark_safe(html)  # noqa: S308
