"""A conversation exported for keeping: as JSON (for programs) and as Markdown (for
people). Both are built from the same rows, read in a fixed number of queries."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from django.utils.text import slugify

from generation import branching
from generation.attachments import for_thread
from generation.models import Conversation, Message
from usage.models import usd_text

FILENAME_SLUG_MAX = 60
# Characters that would start Markdown syntax in a one-line text (title, model name).
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#|~&])")


def export_messages(conversation: Conversation) -> list[Message]:
    """The active branch (what the chat shows; other versions are left out) with each
    answer's provider and its cost summed over its usage records, and each question's
    attachments (their names), in two queries whatever its length."""
    messages = conversation.messages.select_related("provider", "alias").prefetch_related(
        for_thread()
    )
    return branching.active_branch(conversation, list(messages.with_cost()))


def export_filename(conversation: Conversation, extension: str) -> str:
    """An ASCII name safe in a header and on any file system: "<slug of title>-<id>.<ext>"."""
    slug = slugify(conversation.title)[:FILENAME_SLUG_MAX].strip("-_") or "conversation"
    return f"{slug}-{conversation.pk}.{extension}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def cost_nanos(message: Message) -> int | None:
    """What an answer cost in nanodollars; None when unknown (an unpriced model, or an
    answer still being written). A question, or an answer that never reached a provider,
    cost nothing. Needs Message.objects.with_cost()."""
    if message.role == Message.Role.USER:
        return 0
    if message.is_active or message.unpriced_attempts:  # type: ignore[attr-defined]
        return None
    return message.cost_nanos or 0  # type: ignore[attr-defined]


def _error(message: Message) -> dict[str, str] | None:
    if message.status != Message.Status.FAILED:
        return None
    return {"kind": message.error_kind or "unknown", "message": message.error_text}


def _message_data(message: Message) -> dict[str, Any]:
    nanos = cost_nanos(message)
    answer = message.is_assistant
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "model": (message.model or None) if answer else None,
        "provider": message.provider.name if answer and message.provider else None,
        # The alias it was sent to (routing): `provider` and `model` name its target.
        "alias": message.alias.name if answer and message.alias else None,
        "created_at": _iso(message.created_at),
        "finished_at": _iso(message.finished_at),
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "cost_usd": usd_text(nanos) if nanos is not None and answer else None,
        "error": _error(message),
        "attachments": [attachment.name for attachment in message.attachments.all()],
    }


def _totals(messages: list[Message]) -> dict[str, Any]:
    costs = [cost_nanos(message) for message in messages]
    known = [cost for cost in costs if cost is not None]
    return {
        "input_tokens": sum(message.input_tokens or 0 for message in messages),
        "output_tokens": sum(message.output_tokens or 0 for message in messages),
        # One unknown cost makes the sum unknown: a partial sum would read as the total.
        "cost_usd": usd_text(sum(known)) if len(known) == len(costs) else None,
    }


def export_data(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    """The export as plain data, keys in a fixed order."""
    return {
        "conversation": {
            "id": conversation.pk,
            "title": conversation.display_title,
            "created_at": _iso(conversation.created_at),
            "updated_at": _iso(conversation.updated_at),
        },
        "messages": [_message_data(message) for message in messages],
        "totals": _totals(messages),
    }


def export_json(conversation: Conversation, messages: list[Message]) -> str:
    data = export_data(conversation, messages)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _inline(text: str) -> str:
    """One line of plain text, shown as written inside Markdown (no syntax, no line breaks)."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(text.split()))


def _fenced(text: str, info: str) -> str:
    """The text verbatim in a code fence longer than any backtick run in it, so nothing
    in it (a heading, a fence of its own) can end the block or the message's section."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _answer_heading(message: Message) -> str:
    model = _inline(message.model or "default model")
    if message.provider is not None:
        model += f" via {_inline(message.provider.name)}"
    if message.alias is not None:
        model += f" (alias {_inline(message.alias.name)})"
    return f"## Assistant · {model}"


def _usage_note(message: Message) -> str:
    parts = []
    if message.total_tokens is not None:
        estimated = " (estimated)" if message.usage_estimated else ""
        parts.append(
            f"{message.input_tokens or 0} in · {message.output_tokens or 0} out{estimated}"
        )
    if message.cost:
        parts.append(message.cost)
    return " · ".join(parts)


def _state_note(message: Message) -> str:
    if message.status == Message.Status.FAILED:
        return f"**Failed:** {_inline(message.error_text)}"
    if message.status == Message.Status.CANCELLED:
        return "**Stopped** before the end."
    if message.is_active:
        return "**Still being written** when exported."
    return ""


def _message_markdown(message: Message) -> str:
    if not message.is_assistant:
        heading = "## User"
        body = _fenced(message.content, "text")
        notes = [f"*{_iso(message.created_at)}*"]
        if names := [_inline(attachment.name) for attachment in message.attachments.all()]:
            notes.append("Attached: " + ", ".join(names))
    else:
        heading = _answer_heading(message)
        body = _fenced(message.content, "markdown") if message.content else "*(no text)*"
        usage = _usage_note(message)
        notes = [f"*{_iso(message.created_at)}{' · ' + usage if usage else ''}*"]
        if state := _state_note(message):
            notes.append(state)
    return "\n\n".join([heading, *notes, body])


def export_markdown(conversation: Conversation, messages: list[Message]) -> str:
    totals = _totals(messages)
    cost = f"${totals['cost_usd']}" if totals["cost_usd"] is not None else "cost unknown"
    summary = (
        f"*Started {_iso(conversation.created_at)} · {len(messages)} messages · "
        f"{totals['input_tokens']} in · {totals['output_tokens']} out · {cost}*"
    )
    parts = [f"# {_inline(conversation.display_title)}", summary]
    parts += [_message_markdown(message) for message in messages]
    return "\n\n".join(parts) + "\n"
