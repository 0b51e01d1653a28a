"""Chat workflows that touch several models. Views and tasks call these; keyword-only."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from generation.models import DEFAULT_THINKING_BUDGET, Conversation, Message
from generation.presets import Preset
from generation.relay import get_relay
from generation.tasks import generate_message
from providers.adapters import adapter_class
from providers.adapters.base import (
    ChatMessage,
    GenerationRequest,
    Part,
    ReasoningPart,
    Role,
    TextPart,
    merge_turns,
)
from providers.engine import validate_request
from providers.models import Provider
from providers.validation import InvalidRequest
from usage.budgets import BudgetExceeded, prompt_tokens_to_hold, release_hold, reserve_budget
from usage.services import record_refusal


class SendError(Exception):
    """The message cannot be sent as asked; `message` is shown next to the composer."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Sent:
    conversation: Conversation
    user_message: Message
    assistant_message: Message
    created_conversation: bool


def _chat_message(message: Message) -> ChatMessage:
    """A stored message as the provider reads it: its parts, in order."""
    role: Role = "assistant" if message.role == Message.Role.ASSISTANT else "user"
    if role == "assistant" and message.status == Message.Status.COMPLETE:
        return ChatMessage(role, (*_reasoning_parts(message), TextPart(message.content)))
    return ChatMessage.of_text(role, message.content)


def _reasoning_parts(message: Message) -> tuple[Part, ...]:
    # The blocks with their signatures when there are any (Anthropic wants them back
    # unchanged), else the text alone (which the OpenAI format leaves out).
    if message.reasoning_parts:
        return tuple(ReasoningPart.from_json(part) for part in message.reasoning_parts)
    return (ReasoningPart(message.reasoning),) if message.reasoning else ()


# What a message of the history needs to become a ChatMessage.
HISTORY_FIELDS = ("role", "content", "status", "reasoning", "reasoning_parts")


def thinking_budget_for(*, provider: Provider, enabled: bool, budget: int) -> int | None:
    """The budget an answer asks for: the chat's, when its thinking is on and the
    provider's adapter takes a budget; else None (thinking off)."""
    if not enabled or not adapter_class(provider.kind).supports_thinking_budget:
        return None
    return budget


def _turns(messages: Iterable[Message]) -> tuple[ChatMessage, ...]:
    return merge_turns(
        _chat_message(earlier)
        for earlier in messages
        # Failed and stopped answers are not part of the dialogue.
        if earlier.role == Message.Role.USER or earlier.status == Message.Status.COMPLETE
    )


def _history_end(message: Message) -> int | None:
    """The id a message's history stops before: its own, or for a retry, that of the
    answer it replaces (followed down a chain of retries). A retry answers the question
    the failed answer was for, not the messages sent since."""
    while message.retry_of is not None:  # a query per retry in the chain, none for a send
        message = message.retry_of
    return message.id


def build_request(*, message: Message) -> GenerationRequest:
    """The request an assistant message answers: the conversation up to it."""
    history = Message.objects.filter(
        conversation_id=message.conversation_id, id__lt=_history_end(message)
    ).only(*HISTORY_FIELDS)
    return GenerationRequest(
        model=message.model,
        messages=_turns(history),
        system=message.conversation.system_prompt,
        max_tokens=message.max_tokens,
        temperature=message.temperature,
        thinking_budget=message.thinking_budget,
        cache_scope=str(message.conversation.owner_id),
    )


def _validate(*, provider: Provider, request: GenerationRequest) -> GenerationRequest:
    # May fetch the provider's model list (cached): never inside a transaction.
    try:
        return validate_request(provider, request)
    except InvalidRequest as exc:
        raise SendError(exc.message, exc.field) from exc


def _reserve(*, user: User, provider: Provider, request: GenerationRequest) -> int | None:
    """Hold the worst-case cost, or raise BudgetExceeded. Call inside the transaction
    that stores the answer: a failed insert then leaves no hold behind."""
    max_tokens = request.max_tokens
    if request.thinking_budget is not None:
        # Thinking is output on top of the answer's room (the adapter sends the sum).
        cap = int(settings.SWITCHBOARD["MAX_TOKENS_CAP"])
        max_tokens = (max_tokens or cap) + request.thinking_budget
    reservation = reserve_budget(
        user=user,
        provider=provider,
        model=request.model,
        max_tokens=max_tokens,
        prompt_tokens=prompt_tokens_to_hold(request),
    )
    return reservation.pk  # None for a user without a limit: nothing is held


@contextmanager
def _refusal_recorded(
    *, user: User, provider: Provider, request: GenerationRequest
) -> Iterator[None]:
    """Around the transaction that reserves: a refusal is recorded after its rollback,
    and reaches the user as a SendError in words."""
    try:
        yield
    except BudgetExceeded as exc:
        record_refusal(provider=provider, user=user, source="chat", model=request.model)
        raise SendError(exc.reason) from exc


def release_budget(*, message: Message) -> None:
    """Drop the budget hold of a message that will never reach upstream."""
    release_hold(reservation_id=message.reservation_id)


def send_message(
    *,
    user: User,
    conversation: Conversation | None,
    text: str,
    provider: Provider,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    system_prompt: str = "",
    preset: Preset | None = None,
) -> Sent:
    """Store the user's message and a pending answer; the worker starts after commit.

    `system_prompt` and `preset` are for a new chat only: an existing one sends its own
    prompt, and keeps the preset it started from. The composer already holds the
    preset's settings (the user may have changed them): the preset is only recorded,
    and its thinking flag turns thinking on for the new chat."""
    if not text.strip():
        raise SendError("Write a message first.", "text")
    if preset is not None and conversation is None:
        check_preset_usable(preset=preset)
    if not provider.is_active:
        raise SendError("That provider is no longer available.", "provider")
    prior = list(conversation.messages.only(*HISTORY_FIELDS)) if conversation else []
    if conversation is not None:
        system_prompt = conversation.system_prompt
    if conversation is not None:
        thinking, budget = conversation.thinking_enabled, conversation.thinking_budget
    else:
        thinking, budget = preset is not None and preset.thinking, DEFAULT_THINKING_BUDGET
    thinking_budget = thinking_budget_for(provider=provider, enabled=thinking, budget=budget)
    request = _validate(
        provider=provider,
        request=GenerationRequest(
            model=model or provider.effective_default_model,
            messages=_turns([*prior, Message(role=Message.Role.USER, content=text)]),
            system=system_prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            thinking_budget=thinking_budget,
        ),
    )
    created = conversation is None
    request = replace(request, cache_scope=str(user.pk))
    with _refusal_recorded(user=user, provider=provider, request=request), transaction.atomic():
        reservation_id = _reserve(user=user, provider=provider, request=request)
        if conversation is None:
            conversation = Conversation(
                owner=user,
                system_prompt=system_prompt,
                preset=preset,
                thinking_enabled=thinking,
            )
            conversation.title = conversation.title_from(text)
        conversation.provider = provider
        conversation.model = request.model
        conversation.save()
        user_message = Message(conversation=conversation, role=Message.Role.USER, content=text)
        assistant = Message(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            provider=provider,
            model=request.model,
            temperature=temperature,
            max_tokens=max_tokens,
            thinking_budget=thinking_budget,
            reservation_id=reservation_id,
            request=request.to_json(),
        )
        # One INSERT for both (PostgreSQL and SQLite return their ids), in this order.
        Message.objects.bulk_create([user_message, assistant])
        # Only the id crosses the queue: no prompt text in task arguments.
        transaction.on_commit(lambda: generate_message(assistant.pk))
    return Sent(conversation, user_message, assistant, created)


def retry_message(*, message: Message) -> Message:
    """A fresh answer with the same parameters, replacing a failed or stopped one."""
    if not message.retryable or hasattr(message, "retried_by"):
        raise SendError("This answer cannot be retried.")
    provider = message.provider
    if provider is None or not provider.is_active:
        raise SendError("That provider is no longer available.", "provider")
    pending = Message(
        conversation=message.conversation,
        role=Message.Role.ASSISTANT,
        model=message.model,
        temperature=message.temperature,
        max_tokens=message.max_tokens,
        thinking_budget=message.thinking_budget,
        retry_of=message,  # the history up to the failed answer
    )
    request = _validate(provider=provider, request=build_request(message=pending))
    owner = message.conversation.owner
    try:
        with (
            _refusal_recorded(user=owner, provider=provider, request=request),
            transaction.atomic(),
        ):
            reservation_id = _reserve(user=owner, provider=provider, request=request)
            fresh = Message.objects.create(
                reservation_id=reservation_id,
                conversation=message.conversation,
                role=Message.Role.ASSISTANT,
                status=Message.Status.PENDING,
                provider=provider,
                model=message.model,
                temperature=message.temperature,
                max_tokens=message.max_tokens,
                thinking_budget=message.thinking_budget,
                retry_of=message,
                request=request.to_json(),
            )
            Conversation.objects.filter(pk=message.conversation_id).update(
                updated_at=timezone.now()
            )
            transaction.on_commit(lambda: generate_message(fresh.pk))
    except IntegrityError:
        # A second click raced the first past the check above: one retry is enough (its
        # hold went with the rolled-back transaction).
        raise SendError("This answer is already being retried.") from None
    return fresh


def cancel_message(*, message: Message) -> None:
    """Stop an answer. A pending one stops here; a streaming one is flagged for its worker."""
    now = timezone.now()
    relay = get_relay()
    stopped = Message.objects.filter(pk=message.pk, status=Message.Status.PENDING).update(
        status=Message.Status.CANCELLED, cancel_requested=True, finished_at=now, updated_at=now
    )
    if stopped:
        relay.complete(message.relay_key)  # wakes the SSE readers waiting for a first token
        release_budget(message=message)
        return
    flagged = Message.objects.filter(pk=message.pk, status=Message.Status.STREAMING).update(
        cancel_requested=True
    )
    if flagged:
        relay.request_cancel(message.relay_key)


def check_preset_usable(*, preset: Preset) -> None:
    if not preset.provider.is_active:
        raise SendError(
            f"The preset “{preset.name}” uses the provider “{preset.provider.name}”, "
            "which is not available now. Pick another preset or provider.",
            "preset",
        )


def save_preset(
    *,
    owner: User,
    conversation: Conversation,
    name: str,
    temperature: float | None,
    max_tokens: int | None,
    thinking: bool,
) -> Preset:
    """A personal preset with the chat's provider, model and system prompt, and the
    composer's temperature and max tokens."""
    name = name.strip()
    if conversation.provider is None:
        raise SendError("Send a message first: a preset needs the chat's provider.")
    try:
        with transaction.atomic():
            return Preset.objects.create(
                owner=owner,
                name=name,
                provider=conversation.provider,
                model=conversation.model,
                system_prompt=conversation.system_prompt,
                temperature=temperature,
                max_tokens=max_tokens,
                thinking=thinking,
            )
    except IntegrityError:  # the owner's name is taken (the unique constraint says so)
        raise SendError(f"You already have a preset named “{name}”. Choose another name.") from None


def rename_conversation(*, conversation: Conversation, title: str) -> None:
    conversation.title = title.strip()[: Conversation._meta.get_field("title").max_length]
    conversation.save(update_fields=["title", "updated_at"])


def set_system_prompt(*, conversation: Conversation, system_prompt: str) -> None:
    """Used from the next answer on: answers already sent keep the request they made."""
    conversation.system_prompt = system_prompt
    conversation.save(update_fields=["system_prompt", "updated_at"])


def set_thinking(*, conversation: Conversation, enabled: bool, budget: int) -> None:
    """Thinking on or off, and its budget, from the next answer on (the form checked the
    budget against the adapter's limits)."""
    conversation.thinking_enabled = enabled
    conversation.thinking_budget = budget
    conversation.save(update_fields=["thinking_enabled", "thinking_budget", "updated_at"])


def delete_conversation(*, conversation: Conversation) -> None:
    # Stop the workers first: they notice the row is gone at their next save anyway.
    active = list(conversation.messages.filter(status__in=Message.ACTIVE))
    for message in active:
        cancel_message(message=message)
    conversation.delete()
    # A worker that had claimed an answer but not loaded it finds it gone and ends
    # without settling its hold: give the budget back here. (One that streams on still
    # records its usage, which counts as spend either way.)
    for message in active:
        release_budget(message=message)
