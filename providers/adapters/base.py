"""The one interface every provider kind implements, and the values that cross it.

Consumers (the chat task, the JSON API, the /v1 gateway) do not call adapters
directly: they call `providers.engine.stream_generation` / `generate`, which adds
validation, retries and caching on top of one adapter attempt.

A stream yields `ReasoningDelta` items (a reasoning model's thinking, as it arrives),
`TextDelta` items, `ToolCallDelta` items (the functions it calls, in pieces) and then
exactly one `GenerationResult`. Upstream
failures never raise out of a stream: the result carries `error` (a `ProviderError`)
with the partial text kept and usage reported or estimated. Closing the iterator
(`aclose()`, or a cancelled task) stops reading upstream at once.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from providers.errors import ProviderError

if TYPE_CHECKING:
    from providers.adapters.embeddings import EmbeddingRequest, EmbeddingResult
    from providers.models import Provider

Role = Literal["user", "assistant"]


# A message is a role and an ordered list of typed parts; each adapter translates the
# parts it can send into its wire format. The parts are plain values: what a part holds
# is what goes upstream, so an adapter never reaches back into the database.


@dataclass(frozen=True)
class TextPart:
    text: str


IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


@dataclass(frozen=True)
class ImagePart:
    """An image as its bytes, or (from an API client) an https URL the provider fetches:
    Switchboard itself never fetches a URL a client gave it."""

    media_type: str  # one of IMAGE_TYPES; "" for a URL
    data: bytes = field(default=b"", repr=False)  # the file's bytes; base64 only on the wire
    name: str = ""  # the uploaded file's name, for the thread and exports
    url: str = field(default="", repr=False)
    detail: str = ""  # OpenAI's resolution hint ("low", "high", "auto"); others ignore it


@dataclass(frozen=True)
class FilePart:
    """A text-like file (or a PDF's extracted text), sent as text under its name."""

    name: str
    text: str = field(repr=False)


@dataclass(frozen=True)
class ReasoningPart:
    """What a reasoning model thought before answering. `signature` is Anthropic's
    proof of a thinking block, which it wants back unchanged on the next turn;
    `redacted` is the opaque data of a block Anthropic redacted (no readable text),
    which goes back unchanged too."""

    text: str = field(repr=False)
    signature: str = field(default="", repr=False)
    redacted: str = field(default="", repr=False)

    @property
    def returnable(self) -> bool:
        """Whether a provider can be given this part back (it carries its proof)."""
        return bool(self.signature or self.redacted)

    def to_json(self) -> dict[str, str]:
        data = {"text": self.text}
        if self.signature:
            data["signature"] = self.signature
        if self.redacted:
            data["redacted"] = self.redacted
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReasoningPart:
        return cls(
            str(data.get("text", "")),
            str(data.get("signature", "")),
            str(data.get("redacted", "")),
        )


@dataclass(frozen=True)
class ToolCallPart:
    """A function the model asked to call (on an assistant message). `arguments` is the
    JSON text as the model wrote it: OpenAI hands it on as text, and a client parses it."""

    id: str
    name: str
    arguments: str = field(default="{}", repr=False)


@dataclass(frozen=True)
class ToolResultPart:
    """What a client's function returned for the call `call_id`: a part of a user-side
    turn (OpenAI's `tool` message; Anthropic's `tool_result` block in a user turn)."""

    call_id: str
    content: str = field(repr=False)


Part = TextPart | ImagePart | FilePart | ReasoningPart | ToolCallPart | ToolResultPart


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def of_text(cls, role: Role, text: str) -> ChatMessage:
        return cls(role, (TextPart(text),))

    @property
    def text(self) -> str:
        """The message's own text parts, joined (what a text-only view of it shows)."""
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    def prompt_text(self) -> str:
        """Everything textual the provider reads as prompt: text and file contents, with
        each file's name. Estimates and limits count this; images are counted apart."""
        # Text parts run on, as OpenAI joins them; a file stands apart as a block.
        blocks: list[str] = []
        run_on = False  # the last block is text that the next text part continues
        for part in self.parts:
            if isinstance(part, TextPart):
                if run_on:
                    blocks[-1] += part.text
                else:
                    blocks.append(part.text)
                run_on = True
            elif isinstance(part, FilePart):
                blocks.append(file_block(part))
                run_on = False
        return "\n\n".join(blocks)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ImagePart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ToolCallPart))

    @property
    def tool_results(self) -> tuple[ToolResultPart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ToolResultPart))

    def tool_chars(self) -> int:
        """The characters of its tool calls and results: prompt the provider reads too."""
        calls = sum(len(call.name) + len(call.arguments) for call in self.tool_calls)
        return calls + sum(len(result.content) for result in self.tool_results)


def file_block(part: FilePart) -> str:
    """How a file's text reaches a model: fenced under its name, one shape for every kind."""
    return f"<file name={part.name!r}>\n{part.text}\n</file>"


def merge_turns(messages: Iterable[ChatMessage]) -> tuple[ChatMessage, ...]:
    """Providers want alternating turns: consecutive messages of one role become one."""
    turns: list[ChatMessage] = []
    for message in messages:
        if turns and turns[-1].role == message.role:
            # Tool results and calls are blocks of their own: no text between them, so
            # consecutive results make one turn of results (as Anthropic requires).
            tools = (ToolCallPart, ToolResultPart)
            edges = (*turns[-1].parts[-1:], *message.parts[:1])
            bare = any(isinstance(part, tools) for part in edges)
            separator = () if bare else (TextPart("\n\n"),)
            joined = (*turns[-1].parts, *separator, *message.parts)
            turns[-1] = ChatMessage(message.role, joined)
        else:
            turns.append(message)
    return tuple(turns)


def _part_to_json(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        data = base64.b64encode(part.data).decode("ascii")
        return {
            "type": "image",
            "media_type": part.media_type,
            "data": data,
            "name": part.name,
            "url": part.url,
            "detail": part.detail,
        }
    if isinstance(part, FilePart):
        return {"type": "file", "name": part.name, "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_result", "call_id": part.call_id, "content": part.content}
    return {"type": "reasoning", **part.to_json()}


def _part_from_json(data: dict[str, Any]) -> Part:
    kind = data["type"]
    if kind == "text":
        return TextPart(data["text"])
    if kind == "image":
        raw = base64.b64decode(data["data"])
        extra = {"url": data.get("url", ""), "detail": data.get("detail", "")}
        return ImagePart(data["media_type"], raw, data.get("name", ""), **extra)
    if kind == "file":
        return FilePart(data["name"], data["text"])
    if kind == "reasoning":
        return ReasoningPart.from_json(data)
    if kind == "tool_call":
        return ToolCallPart(data["id"], data["name"], data["arguments"])
    if kind == "tool_result":
        return ToolResultPart(data["call_id"], data["content"])
    raise ValueError(f"Unknown part type {kind!r}")


@dataclass(frozen=True)
class ResponseFormat:
    """A JSON answer: any object ("json_object"), or one that follows `schema`."""

    type: Literal["json_object", "json_schema"]
    name: str = ""  # the schema's name, as OpenAI asks for one
    schema: dict[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, its JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None  # None: the function takes no arguments
    strict: bool | None = None  # OpenAI's strict schema adherence; None: not given


@dataclass(frozen=True)
class NamedTool:
    """A tool_choice that names the one function the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedTool


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    system: str = ""
    max_tokens: int | None = None
    # None means "the provider's default"; 0 is a real value and is sent as 0.
    temperature: float | None = None
    top_p: float | None = None  # None: the provider's default, as for temperature
    stop: tuple[str, ...] = ()  # stop sequences; empty: none
    # OpenAI's sampling controls; None (or empty) is "not given". A kind that cannot
    # honour one names it in its adapter's `unsupported_params`, and is refused it.
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: tuple[tuple[str, float], ...] = ()  # (token id, bias) pairs
    end_user: str = ""  # the API client's `user`, for the provider's abuse monitoring
    response_format: ResponseFormat | None = None  # None: free text
    # OpenAI's reasoning_effort ("minimal" to "high"); "": the model's default. An adapter
    # without it turns it into a thinking budget, or leaves it (see its `_params`).
    reasoning_effort: str = ""
    n: int | None = None  # answers wanted (not streamed); None: one
    # Tokens a model may think for before answering, for the adapters whose class says
    # `supports_thinking_budget`; None: thinking off (a model that always reasons, such
    # as DeepSeek's reasoner, still does). Others ignore it.
    thinking_budget: int | None = None
    # Who may be answered from a response cached for this request (the caller's user):
    # never sent upstream, only part of the cache key.
    cache_scope: str = ""
    # Functions the model may call (the gateway's clients; the chat sends none), whether
    # and which it must call (None: the provider's default), and whether it may call
    # several at once (None: the provider's default).
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, for a request stored until a worker makes it."""
        data = asdict(self)
        data["messages"] = [
            {"role": m.role, "parts": [_part_to_json(part) for part in m.parts]}
            for m in self.messages
        ]
        data["stop"] = list(self.stop)
        data["logit_bias"] = [list(pair) for pair in self.logit_bias]
        data["tools"] = [asdict(tool) for tool in self.tools]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(
            **{
                **data,
                "messages": tuple(
                    ChatMessage(m["role"], tuple(_part_from_json(part) for part in m["parts"]))
                    for m in data["messages"]
                ),
                "stop": tuple(data.get("stop", ())),
                "logit_bias": tuple(tuple(pair) for pair in data.get("logit_bias", ())),
                "response_format": ResponseFormat(**data["response_format"])
                if data.get("response_format")
                else None,
                "tools": tuple(ToolSpec(**tool) for tool in data.get("tools", ())),
                "tool_choice": NamedTool(**choice)
                if isinstance(choice := data.get("tool_choice"), dict)
                else choice,
            }
        )


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # True when the stream broke before the provider reported usage

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class TextDelta:
    text: str
    choice: int = 0  # which answer of a request for several (n); 0 for the first


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call, as it streams. Calls are numbered from 0 in the order they
    begin; the first piece of each carries its id and name, the later ones ("" for both)
    more of its arguments' JSON text."""

    index: int
    id: str = ""
    name: str = ""
    arguments_fragment: str = ""
    choice: int = 0  # as TextDelta's


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of a reasoning model's thinking. Reasoning comes before the answer's text."""

    text: str


@dataclass
class Attempt:
    """One upstream call. Retries are separate attempts; metering writes one record each."""

    number: int  # 1-based
    outcome: str  # "ok" or an ErrorKind value
    status_code: int | None = None
    wait_before_retry: float = 0.0  # seconds slept after this attempt, 0 for the last
    time_to_first_token: float | None = None  # seconds
    latency: float = 0.0  # seconds
    usage: Usage = field(default_factory=Usage)
    # Who made it, when a routed call (routing.engine) tried several targets; None: the
    # provider and model of the call itself.
    provider: Provider | None = None
    model: str = ""


@dataclass
class GenerationResult:
    text: str
    model: str
    finish_reason: str = ""  # "stop", "length", ... as the provider says; "" when failed
    usage: Usage = field(default_factory=Usage)
    error: ProviderError | None = None
    cached: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    # What the model thought, block by block, with what is needed to send it back
    # (signatures, redacted data); empty for a model that does not reason.
    reasoning: tuple[ReasoningPart, ...] = ()
    # The functions the model called, complete (finish_reason "tool_calls").
    tool_calls: tuple[ToolCallPart, ...] = ()
    # The other answers of a request with n > 1 (their usage is in this one's).
    more_choices: tuple[GenerationResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reasoning_text(self) -> str:
        return "".join(part.text for part in self.reasoning)


StreamItem = TextDelta | ReasoningDelta | ToolCallDelta | GenerationResult


class Adapter(Protocol):
    """One attempt at one provider. Built per provider with its decrypted key."""

    # Whether `embed` can be called (the engine refuses the call before it otherwise).
    supports_embeddings: ClassVar[bool]

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamItem, None]: ...

    async def complete(self, request: GenerationRequest) -> GenerationResult: ...

    async def list_models(self) -> list[str]: ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """One embeddings attempt; like `complete`, a failure comes back as ``error``."""
        ...
