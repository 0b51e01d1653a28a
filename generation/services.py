"""Chat workflows that touch several models. Views and tasks call these; keyword-only."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from generation import branching
from generation.attachments import (
    Attachment,
    carried_by,
    copy_attachments,
    load_parts,
    store_attachments,
)
from generation.models import DEFAULT_THINKING_BUDGET, Conversation, Message
from generation.presets import Preset
from generation.relay import get_relay
from generation.routes import Route, alias_route, direct_route
from generation.tasks import generate_message
from generation.uploads import Upload
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
from providers.models_list import cached_models
from providers.validation import InvalidRequest, check_request
from routing.models import Alias
from routing.services import AliasUnavailable
from usage.budgets import (
    BudgetExceeded,
    output_tokens_to_hold,
    prompt_tokens_to_hold,
    release_hold,
    reserve_budget,
)
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
    """A stored message as the provider reads it: its parts, in order. Its attachments
    come from load_parts' prefetch (a query per message without it)."""
    role: Role = "assistant" if message.role == Message.Role.ASSISTANT else "user"
    if role == "assistant" and message.status == Message.Status.COMPLETE:
        return ChatMessage(role, (*_reasoning_parts(message), TextPart(message.content)))
    return _with_attached(role, message.content, [a.part() for a in message.attachments.all()])


def _with_attached(role: Role, text: str, attached: Sequence[Part]) -> ChatMessage:
    """The attachments first (images, files' text), then what the user wrote about them;
    text alone stays one text part."""
    if not attached:
        return ChatMessage.of_text(role, text)
    return ChatMessage(role, (*attached, *((TextPart(text),) if text.strip() else ())))


def _reasoning_parts(message: Message) -> tuple[Part, ...]:
    # The blocks with their signatures when there are any (Anthropic wants them back
    # unchanged), else the text alone (which the OpenAI format leaves out).
    if message.reasoning_parts:
        return tuple(ReasoningPart.from_json(part) for part in message.reasoning_parts)
    return (ReasoningPart(message.reasoning),) if message.reasoning else ()


# What a message of the history needs to become a ChatMessage.
HISTORY_FIELDS = ("role", "content", "status", "parent", "reasoning", "reasoning_parts")


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


def build_request(*, message: Message) -> GenerationRequest:
    """The request an assistant message answers: its own branch of the conversation, from
    the first message to the one it answers (its parent). Versions on other branches, and
    messages sent after it, are not part of it."""
    history = _branch_before(message.conversation_id, message.parent_id)
    return GenerationRequest(
        model=message.model,
        messages=_turns(history),
        system=message.conversation.system_prompt,
        max_tokens=message.max_tokens,
        temperature=message.temperature,
        thinking_budget=message.thinking_budget,
        cache_scope=str(message.conversation.owner_id),
    )


def _branch_before(conversation_id: int, parent_id: int | None) -> list[Message]:
    """The branch a new message after `parent_id` continues (versions on other branches,
    and messages sent after it, are not part of it), with the parts of its messages."""
    messages = Message.objects.filter(conversation_id=conversation_id).only(*HISTORY_FIELDS)
    branch = branching.path_to(list(messages), parent_id)
    load_parts(branch)
    return branch


def _validate(*, route: Route, request: GenerationRequest) -> GenerationRequest:
    # May fetch the provider's model list (cached): never inside a transaction. An
    # alias's first target is checked against its cached list only: staff named its
    # model, and when it is down, a fetch would hold the send up before the worker
    # falls back past it anyway.
    try:
        if route.targets:
            return check_request(route.provider, request, cached_models(route.provider))
        return validate_request(route.provider, request)
    except InvalidRequest as exc:
        raise SendError(exc.message, exc.field) from exc


def _route(*, provider: Provider | None, model: str, alias: Alias | None) -> Route:
    """What answers: `alias` when given, else `provider` and `model`; or SendError."""
    if alias is not None:
        try:
            return alias_route(alias=alias)
        except AliasUnavailable as exc:
            raise SendError(exc.message, "alias") from exc
    if provider is None or not provider.is_active:
        raise SendError("That provider is no longer available.", "provider")
    return direct_route(provider=provider, model=model)


def _reserve(*, user: User, route: Route, request: GenerationRequest) -> int | None:
    """Hold the worst-case cost (of the costliest target an alias may reach), or raise
    BudgetExceeded. Call inside the transaction that stores the answer: a failed insert
    then leaves no hold behind."""
    provider, model = route.held_target(request)
    reservation = reserve_budget(
        user=user,
        provider=provider,
        model=model,
        max_tokens=output_tokens_to_hold(request),
        prompt_tokens=prompt_tokens_to_hold(request),
    )
    return reservation.pk  # None for a user without a limit: nothing is held


@contextmanager
def _refusal_recorded(*, user: User, route: Route, request: GenerationRequest) -> Iterator[None]:
    """Around the transaction that reserves: a refusal is recorded after its rollback
    (naming the target held for, and the alias), and reaches the user as a SendError."""
    try:
        yield
    except BudgetExceeded as exc:
        provider, model = route.held_target(request)
        record_refusal(
            provider=provider,
            user=user,
            source="chat",
            model=model,
            alias=route.alias_name,
            scope=exc.scope,
        )
        raise SendError(exc.reason) from exc


def release_budget(*, message: Message) -> None:
    """Drop the budget hold of a message that will never reach upstream."""
    release_hold(reservation_id=message.reservation_id)


def active_history(conversation: Conversation) -> list[Message]:
    """The messages a send in `conversation` follows: its active branch, with the parts
    (attachments, image bytes) of those messages only."""
    prior = branching.active_branch(conversation, list(conversation.messages.only(*HISTORY_FIELDS)))
    load_parts(prior)
    return prior


def send_message(
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
    attachments: Sequence[Upload] = (),
    alias: Alias | None = None,
) -> Sent:
    """Store the user's message at the end of the chat's active branch and a pending
    answer; the worker starts after commit.

    `system_prompt` and `preset` are for a new chat only: an existing one sends its own
    prompt, and keeps the preset it started from. The composer already holds the
    preset's settings (the user may have changed them): the preset is only recorded,
    and its thinking flag turns thinking on for the new chat. `attachments` are files
    already checked (uploads.check_uploads); a message may be files alone. With `alias`,
    the alias answers (its targets in turn) and `provider` and `model` are not used."""
    if preset is not None and conversation is None:
        check_preset_usable(preset=preset)
    prior: list[Message] = []
    if conversation is not None:
        system_prompt = conversation.system_prompt
        prior = active_history(conversation)
    return _ask(
        user=user,
        conversation=conversation,
        prior=prior,
        text=text,
        provider=provider,
        model=model,
        alias=alias,
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        preset=preset,
        attachments=attachments,
    )


def edit_message(
    *,
    question: Message,
    text: str,
    provider: Provider | None,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    alias: Alias | None = None,
) -> Sent:
    """A new version of a user message, beside it (the same parent), with a pending answer
    of its own: the chat branches there and shows the new branch. The old version, its
    answers and their usage records stay, one switch away. The new version keeps the
    old one's attachments (the question is edited, not what it asks about)."""
    conversation = question.conversation
    return _ask(
        user=conversation.owner,
        conversation=conversation,
        prior=_branch_before(conversation.pk, question.parent_id),
        text=text,
        provider=provider,
        model=model,
        alias=alias,
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=conversation.system_prompt,
        carried=carried_by(question),
    )


def chat_thinking(*, conversation: Conversation | None, preset: Preset | None) -> bool:
    """Whether an answer in this chat (or a new one from `preset`) thinks."""
    if conversation is not None:
        return conversation.thinking_enabled
    return preset is not None and preset.thinking


def chat_request(
    *,
    conversation: Conversation | None,
    prior: list[Message],
    text: str,
    attached: Sequence[Part],
    provider: Provider,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    system_prompt: str,
    thinking: bool,
) -> GenerationRequest:
    """The request (not yet validated) a message sent after `prior` makes: what the
    budget holds for it, so the composer's estimate (generation.estimates) builds it too."""
    budget = conversation.thinking_budget if conversation is not None else DEFAULT_THINKING_BUDGET
    return GenerationRequest(
        model=model or provider.effective_default_model,
        messages=merge_turns([*_turns(prior), _with_attached("user", text, attached)]),
        system=system_prompt,
        max_tokens=max_tokens,
        temperature=temperature,
        thinking_budget=thinking_budget_for(provider=provider, enabled=thinking, budget=budget),
    )


def _ask(
    *,
    user: User,
    conversation: Conversation | None,
    prior: list[Message],
    text: str,
    provider: Provider | None,
    model: str,
    alias: Alias | None,
    temperature: float | None,
    max_tokens: int | None,
    system_prompt: str,
    preset: Preset | None = None,
    attachments: Sequence[Upload] = (),
    carried: Sequence[Attachment] = (),
) -> Sent:
    """Store `text` (and its attachments: fresh uploads, or those `carried` over from an
    earlier version) as a user message after the branch `prior` (its last message is the
    parent), with a pending answer that becomes the chat's current leaf."""
    if not text.strip() and not attachments and not carried:
        raise SendError("Write a message first.", "text")
    route = _route(provider=provider, model=model, alias=alias)
    thinking = chat_thinking(conversation=conversation, preset=preset)
    asked = chat_request(
        conversation=conversation,
        prior=prior,
        text=text,
        attached=[a.part() for a in carried] + [upload.part() for upload in attachments],
        provider=route.provider,
        model=route.model,
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        thinking=thinking,
    )
    thinking_budget = asked.thinking_budget
    request = _validate(route=route, request=asked)
    created = conversation is None
    request = replace(request, cache_scope=str(user.pk))
    with _refusal_recorded(user=user, route=route, request=request), transaction.atomic():
        reservation_id = _reserve(user=user, route=route, request=request)
        if conversation is None:
            conversation = Conversation(
                owner=user,
                system_prompt=system_prompt,
                preset=preset,
                thinking_enabled=thinking,
            )
            conversation.title = conversation.title_from(
                text if text.strip() else attachments[0].name
            )
            conversation.save()
        user_message = Message.objects.create(
            conversation=conversation,
            parent=prior[-1] if prior else None,
            role=Message.Role.USER,
            content=text,
        )
        assistant = Message.objects.create(
            conversation=conversation,
            parent=user_message,
            role=Message.Role.ASSISTANT,
            status=Message.Status.PENDING,
            provider=route.provider,
            model=request.model,
            alias=route.alias,
            temperature=temperature,
            max_tokens=max_tokens,
            thinking_budget=thinking_budget,
            reservation_id=reservation_id,
            request=request.to_json(),
        )
        copy_attachments(attachments=carried, to=user_message)
        store_attachments(message=user_message, uploads=attachments)
        conversation.provider = route.provider
        conversation.model = request.model
        conversation.alias = route.alias
        conversation.current_leaf = assistant
        conversation.save()
        # Only the id crosses the queue: no prompt text in task arguments.
        transaction.on_commit(lambda: generate_message(assistant.pk))
    return Sent(conversation, user_message, assistant, created)


def regenerate_answer(
    *,
    answer: Message,
    provider: Provider | None = None,
    model: str = "",
    alias: Alias | None = None,
    retry: bool = False,
) -> Message:
    """A new version of an answer, beside it (the same question and branch above), by the
    same model (the same alias, for an answer sent to one) or by `provider`/`model` or
    `alias`; the chat shows it. Its attempts are metered on the new answer; the old one
    and its usage records stay.

    `retry` is the Retry button of a failed or stopped answer: once per answer (that
    answer then hides the button), the same model, the same path."""
    if retry and (not answer.retryable or hasattr(answer, "retried_by")):
        raise SendError("This answer cannot be retried.")
    if answer.is_active:
        raise SendError("This answer is still being written. Stop it first.")
    if provider is None and alias is None:
        # The answer's own: its alias (planned afresh), else its provider and model.
        if answer.alias_id is not None:
            alias = answer.alias
        else:
            provider, model = answer.provider, model or answer.model
    route = _route(provider=provider, model=model, alias=alias)
    conversation = answer.conversation
    fresh = Message(
        conversation=conversation,
        parent_id=answer.parent_id,
        role=Message.Role.ASSISTANT,
        status=Message.Status.PENDING,
        provider=route.provider,
        model=route.model,
        alias=route.alias,
        temperature=answer.temperature,
        max_tokens=answer.max_tokens,
        # A retry asks as the answer did; a new version with the chat's thinking now.
        thinking_budget=answer.thinking_budget
        if retry
        else thinking_budget_for(
            provider=route.provider,
            enabled=conversation.thinking_enabled,
            budget=conversation.thinking_budget,
        ),
        retry_of=answer if retry else None,
    )
    request = _validate(route=route, request=build_request(message=fresh))
    owner = conversation.owner
    try:
        with (
            _refusal_recorded(user=owner, route=route, request=request),
            transaction.atomic(),
        ):
            fresh.reservation_id = _reserve(user=owner, route=route, request=request)
            fresh.model = request.model
            fresh.request = request.to_json()
            fresh.save()
            Conversation.objects.filter(pk=conversation.pk).update(
                current_leaf=fresh,
                provider=route.provider,
                model=request.model,
                alias=route.alias,
                updated_at=timezone.now(),
            )
            transaction.on_commit(lambda: generate_message(fresh.pk))
    except IntegrityError:
        # A second click raced the first past the check above: one retry is enough (its
        # hold went with the rolled-back transaction).
        raise SendError("This answer is already being retried.") from None
    return fresh


def retry_message(
    *,
    message: Message,
    provider: Provider | None = None,
    model: str = "",
    alias: Alias | None = None,
) -> Message:
    """A fresh answer with the same parameters beside a failed or stopped one; with
    `provider` (and `model`, blank for its default) or `alias`, from that instead (a
    model that refused the question's images is retried with one picked in the
    composer)."""
    return regenerate_answer(
        answer=message, provider=provider, model=model, alias=alias, retry=True
    )


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
