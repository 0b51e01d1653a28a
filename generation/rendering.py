"""Model output to HTML and to SSE frames, without ever trusting the output.

Markdown is rendered with raw HTML disabled, then sanitized with nh3 as a second,
independent line of defence. Streaming deltas (the answer's `delta` events and the
thinking's `reasoning` events) are HTML-escaped text, and an SSE frame writes every line
of its data behind its own `data:` prefix, so no output can end a frame early or forge
an event.
"""

from __future__ import annotations

import functools
import html
import re
from typing import TYPE_CHECKING

import nh3
from django.template.loader import render_to_string
from markdown_it import MarkdownIt

if TYPE_CHECKING:
    from django.http import HttpRequest

    from generation.models import Message

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_markdown.enable(["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
# No <img>: a remote image would leak the conversation to whoever serves it.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}
ALLOWED_CLASSES = {"code": {f"language-{name}" for name in ("python", "js", "javascript",
    "ts", "typescript", "bash", "sh", "shell", "json", "html", "css", "sql", "go", "rust",
    "java", "c", "cpp", "yaml", "toml", "diff", "text")}}  # fmt: skip


def render_markdown(text: str) -> str:
    """Safe HTML for a finished message. Links get rel="noopener noreferrer"."""
    rendered = _markdown.render(text)
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        filter_style_properties={"text-align"},
        # A code block scrolls sideways by itself (app.css): focusable, a keyboard scrolls it.
        set_tag_attribute_values={"pre": {"tabindex": "0"}},
    )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_frame(*, event: str, data: str, id: int | None = None) -> bytes:
    """One SSE event. `data` may hold anything: each of its lines gets a `data:`."""
    lines = [f"event: {event}"]
    if id is not None:
        lines.append(f"id: {id}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()


# Live deltas are a token or a few: every reader of an answer (tabs, reconnects) gets
# the same frame from the cache. Longer texts (a replay from an offset) are not kept:
# any ?after= makes a new one, and 4,096 of them could pin gigabytes.
CACHED_DELTA_CHARS = 256


def delta_frame(*, text: str, id: int, reasoning: bool = False) -> bytes:
    """A piece of the answer (event `delta`) or of the thinking (event `reasoning`);
    both carry ids in the one offset space of reasoning followed by answer."""
    if len(text) <= CACHED_DELTA_CHARS:
        return _cached_delta_frame(text, id, reasoning)
    return _delta_frame(text, id, reasoning)


def _delta_frame(text: str, id: int, reasoning: bool) -> bytes:
    # Escaped: the browser inserts the data as HTML, and it must stay text. A carriage
    # return would end an SSE line, so it travels as a character reference instead.
    data = html.escape(text, quote=False).replace("\r", "&#13;")
    return sse_frame(event="reasoning" if reasoning else "delta", data=data, id=id)


_cached_delta_frame = functools.lru_cache(maxsize=4096)(_delta_frame)


def frames_after(*, reasoning: str, content: str, after: int) -> tuple[list[bytes], int]:
    """The frames for what a client that saw id `after` lacks of persisted texts, and
    the id it then has. Offsets count the reasoning first, then the answer; `after` may
    be past what is persisted (the client heard the relay before a save): then nothing.
    """
    frames: list[bytes] = []
    cursor = after
    if cursor < len(reasoning):
        frames.append(delta_frame(text=reasoning[cursor:], id=len(reasoning), reasoning=True))
        cursor = len(reasoning)
    end = len(reasoning) + len(content)
    # An answer begun means the reasoning is whole: an offset past it is in the answer.
    if content and cursor < end:
        frames.append(delta_frame(text=content[cursor - len(reasoning) :], id=end))
        cursor = end
    return frames, cursor


HEARTBEAT = b": keep-alive\n\n"


def render_message(message: Message, request: HttpRequest | None = None) -> str:
    """A message's bubble, as the thread shows it and a stream's final event carries it."""
    return render_to_string("generation/_message.html", {"message": message}, request=request)
