from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.functional import cached_property

from providers.errors import ERROR_WORDS, IMAGES_NOT_ACCEPTED, RETRYABLE_KINDS, ErrorKind

TITLE_MAX = 120
# Tokens a model may think for when a chat turns thinking on (the adapter's limits apply).
DEFAULT_THINKING_BUDGET = 4096

# The cost of an answer: summed over its usage records (one per upstream attempt).
COST_ANNOTATIONS = {
    "metered_attempts": Count("usage_records"),
    "unpriced_attempts": Count("usage_records", filter=Q(usage_records__cost_nanos__isnull=True)),
    "cost_nanos": Sum("usage_records__cost_nanos"),
}


class MessageQuerySet(models.QuerySet["Message"]):
    def with_cost(self) -> MessageQuerySet:
        return self.annotate(**COST_ANNOTATIONS)


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=TITLE_MAX, blank=True)
    # The last provider and model used, preselected in the composer.
    provider = models.ForeignKey(
        "providers.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    # The alias picked last instead (routing): it answers the next message when active.
    alias = models.ForeignKey(
        "routing.Alias", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Sent with every answer from the next one on (an answer's stored request keeps the
    # prompt it was made with). Its length limit lives in the form: settings may change.
    system_prompt = models.TextField(blank=True)
    # The preset this chat started from, shown in the composer; the chat keeps its own
    # copy of the settings, so deleting the preset changes nothing but the label.
    preset = models.ForeignKey(
        "generation.Preset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    # The end of the branch the chat shows: the active branch is the path from the first
    # message to this one (see branching.py). Sending appends to it; editing a message,
    # regenerating an answer or switching versions moves it.
    current_leaf = models.ForeignKey(
        "generation.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Extended thinking, for a provider whose adapter takes a thinking budget (set from
    # the header, used from the next answer on; each answer keeps the budget it had).
    thinking_enabled = models.BooleanField(default=False)
    thinking_budget = models.PositiveIntegerField(default=DEFAULT_THINKING_BUDGET)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.display_title

    @property
    def display_title(self) -> str:
        return self.title or "New chat"

    def title_from(self, text: str) -> str:
        first_line = text.strip().splitlines()[0] if text.strip() else ""
        return first_line[:60] + ("…" if len(first_line) > 60 else "")


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.PENDING, Status.STREAMING)

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # The message this one follows: null for a first message. Messages form a tree: an
    # edit is a user message beside the one it rewrites (same parent), a regeneration an
    # answer beside the one it replaces; both are "versions" of that place in the chat.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    # For an assistant message, SSE event ids are offsets into reasoning + content (the
    # reasoning always comes first): `stream_offset` is the id of the last delta
    # persisted, and a client resuming after id N needs exactly (reasoning + content)[N:].
    content = models.TextField(blank=True)
    # What a reasoning model thought before answering, as streamed (shown collapsed).
    reasoning = models.TextField(blank=True)
    # The reasoning blocks with what a provider needs to take them back on the next
    # turn (ReasoningPart.to_json: Anthropic's signatures, redacted data); None when
    # nothing can go back (DeepSeek's reasoning, or none). Written when the answer ends.
    reasoning_parts = models.JSONField(null=True, blank=True, editable=False)
    # When the thinking began and ended (the answer's first text, or its end): "Thought
    # for N s".
    reasoning_started_at = models.DateTimeField(null=True, blank=True)
    reasoning_ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # Names this message's stream in the relay (ids can be reused by SQLite; this not).
    stream_key = models.UUIDField(default=uuid.uuid4, editable=False)
    cancel_requested = models.BooleanField(default=False)
    error_kind = models.CharField(max_length=32, choices=ErrorKind.choices, blank=True)
    error_message = models.CharField(max_length=500, blank=True)  # safe to show the user
    provider = models.ForeignKey(
        "providers.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200, blank=True)
    # The alias the message was sent to (routing): `provider` and `model` then name the
    # target that answered (or was tried last) once the answer ends.
    alias = models.ForeignKey(
        "routing.Alias", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Parameters used: None means "the provider's default" (0 is a real temperature).
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    thinking_budget = models.PositiveIntegerField(null=True, blank=True)  # None: not asked
    finish_reason = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    usage_estimated = models.BooleanField(default=False)
    # The budget hold (usage.Reservation) taken when the message was sent; settled by
    # the worker once the call is metered. A plain id: usage already points at us.
    reservation_id = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    # The provider request this answer makes, as the send built and validated it
    # (GenerationRequest.to_json): the worker makes exactly that. Cleared once the answer
    # ends, so a long conversation does not store its history again with every answer.
    request = models.JSONField(null=True, blank=True, editable=False)
    # Which failed (or stopped) answer this one retries, so that one hides its Retry
    # button; a retry is a regeneration with the same model (a version beside it).
    retry_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Touched on every periodic save: the sweeper uses it as the worker's heartbeat.
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk} ({self.status})"

    @property
    def relay_key(self) -> str:
        return self.stream_key.hex

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def stream_offset(self) -> int:
        """The SSE event id of everything persisted: reasoning, then the answer."""
        return len(self.reasoning) + len(self.content)

    @property
    def reasoning_redacted(self) -> bool:
        """Whether the provider held back some of the thinking (Anthropic's redacted
        blocks: there is nothing to show of them, only that they were there)."""
        return any(part.get("redacted") for part in self.reasoning_parts or ())

    @property
    def has_reasoning(self) -> bool:
        return bool(self.reasoning) or self.reasoning_redacted

    @property
    def thinking_elapsed(self) -> float:
        """Seconds since the thinking began, for a page shown while it goes on (the
        browser then counts on from there, on its own clock), or 0."""
        if self.reasoning_started_at is None:
            return 0.0
        return max((timezone.now() - self.reasoning_started_at).total_seconds(), 0.0)

    @property
    def thought_seconds(self) -> int | None:
        """How long the model thought, in whole seconds (at least 1), or None."""
        started = self.reasoning_started_at
        ended = self.reasoning_ended_at or self.finished_at
        if started is None or ended is None:
            return None
        return max(1, round((ended - started).total_seconds()))

    @property
    def is_assistant(self) -> bool:
        return self.role == self.Role.ASSISTANT

    @property
    def retryable(self) -> bool:
        if self.status == self.Status.CANCELLED or self.refused_images:
            return True
        return self.status == self.Status.FAILED and self.error_kind in RETRYABLE_KINDS

    @property
    def refused_images(self) -> bool:
        """The model takes no images: the same request can go to a model with vision
        (the retry button then sends the composer's provider and model)."""
        return (
            self.status == self.Status.FAILED
            and self.error_kind == ErrorKind.BAD_REQUEST
            and self.error_message == IMAGES_NOT_ACCEPTED
        )

    @property
    def can_retry(self) -> bool:
        return self.retryable and not hasattr(self, "retried_by")

    @property
    def route_label(self) -> str:
        """Who answered a message sent to an alias, once it ended: "answered by
        OpenAI/gpt-4o-mini via smart" ("last tried" when no text came); "" otherwise."""
        if self.alias_id is None or self.provider is None or self.is_active:
            return ""
        alias = self.alias
        if alias is None:
            return ""
        answered = self.content or self.status == self.Status.COMPLETE
        verb = "answered by" if answered else "last tried"
        return f"{verb} {self.provider.name}/{self.model} via {alias.name}"

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @cached_property
    def cost(self) -> str:
        """What answering cost, from the usage records: "$0.0012", "cost unknown" when an
        attempt used an unpriced model, or "" before anything was metered."""
        from usage.models import NANOS_PER_USD

        if (  # annotated by Message.objects.with_cost(): all three or none
            hasattr(self, "metered_attempts")
            and hasattr(self, "unpriced_attempts")
            and hasattr(self, "cost_nanos")
        ):
            count, unpriced, nanos = self.metered_attempts, self.unpriced_attempts, self.cost_nanos
        else:
            # One row per upstream attempt, so a few: summed here, the query stays plain
            # (an aggregate with filters costs twice as much to compile as to run).
            costs = list(self.usage_records.values_list("cost_nanos", flat=True))
            count, unpriced = len(costs), costs.count(None)
            nanos = sum(cost for cost in costs if cost is not None)
        if not count:
            return ""
        if unpriced:
            return "cost unknown"
        return f"${Decimal(nanos or 0) / NANOS_PER_USD:.4f}"

    @property
    def error_text(self) -> str:
        """The failure in words a user understands; the kind decides, not upstream text."""
        if self.error_kind == ErrorKind.BAD_REQUEST and self.error_message:
            # Our own reason (e.g. the provider was switched off), or the kind's words.
            return self.error_message
        if self.error_kind == ErrorKind.CONFIGURATION and self.error_message:
            return self.error_message  # our own words, naming what is missing
        return ERROR_WORDS.get(self.error_kind, ERROR_WORDS[ErrorKind.UNKNOWN])


# API tokens, presets and attachments live in their own modules; imported here so Django
# registers them.
from generation.api_tokens import ApiToken  # noqa: E402, F401
from generation.attachments import Attachment, AttachmentBlob  # noqa: E402, F401
from generation.presets import Preset  # noqa: E402, F401
