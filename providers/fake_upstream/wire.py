"""The two wire formats the fake upstream speaks: OpenAI chat completions and Anthropic messages.

Each dialect turns "these tokens, this usage, this fault" into the exact JSON and
server-sent events the real API sends, so the real SDKs parse them unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from providers.fake_upstream import tools
from providers.fake_upstream.tools import FakeCall

# Model names the fake publishes in its models lists.
FAKE_MODELS = ("fake-model", "fake-model-large", "demo-model")


# The opaque data of the fake's redacted_thinking block (`redacted=1`).
REDACTED_DATA = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw" + "fake" * 8


def fake_signature(thinking: str) -> str:
    """The fake's signature of a thinking block: deterministic, so a test can expect it,
    and bound to the text, so a block sent back altered is refused."""
    digest = hashlib.sha256(b"fake-upstream:" + thinking.encode()).digest()
    return "ErUB" + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Answer:
    """One generation as the fake will send it."""

    model: str
    tokens: list[str]
    finished_by_length: bool
    prompt_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cache_write_tokens: int = 0
    choices: int = 1  # OpenAI's n, answered without streaming
    reasoning: tuple[str, ...] = ()  # thought tokens, streamed before the answer
    redacted: str = ""  # a redacted_thinking block's data (Anthropic only)
    tool_calls: tuple[FakeCall, ...] = ()  # the calls it makes, after any text

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def thinking(self) -> str:
        return "".join(self.reasoning)

    @property
    def output_tokens(self) -> int:
        # Both APIs bill reasoning as output (OpenAI's completion_tokens include it).
        return len(self.tokens) + len(self.reasoning) + sum(c.tokens for c in self.tool_calls)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class OpenAIDialect:
    name: ClassVar[str] = "openai"
    generation_path: ClassVar[str] = "/v1/chat/completions"

    _ERRORS: ClassVar[dict[int, tuple[str, str, str]]] = {
        # status: (type, code, message) as OpenAI sends them
        400: ("invalid_request_error", "invalid_request", "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        402: ("insufficient_quota", "insufficient_quota", "You exceeded your current quota."),
        404: ("invalid_request_error", "model_not_found", "The model does not exist."),
        429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
        500: ("server_error", "server_error", "The server had an error."),
        503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
        529: ("server_error", "overloaded", "The server is overloaded."),
    }

    @staticmethod
    def api_key(headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def error_body(self, status: int, message: str = "") -> dict[str, Any]:
        kind, code, default = self._ERRORS.get(status, self._ERRORS[500])
        error = {"message": message or default, "type": kind, "param": None, "code": code}
        return {"error": error}

    def models_body(self) -> dict[str, Any]:
        created = 1_700_000_000
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"}
            for m in FAKE_MODELS
        ]
        return {"object": "list", "data": data}

    @staticmethod
    def max_tokens(body: dict[str, Any]) -> int | None:
        value = body.get("max_completion_tokens", body.get("max_tokens"))
        return value if isinstance(value, int) else None

    @staticmethod
    def thinks(body: dict[str, Any]) -> bool:
        return True  # DeepSeek's reasoner reasons whatever the request says

    @staticmethod
    def refusal(body: dict[str, Any]) -> str | None:
        return tools.refusal("openai", body)

    def _usage(self, answer: Answer, output_tokens: int) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": answer.prompt_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": answer.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _finish(self, answer: Answer) -> str:
        if answer.tool_calls:
            return "tool_calls"
        return "length" if answer.finished_by_length else "stop"

    def completion_body(self, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        if answer.reasoning:
            message["reasoning_content"] = answer.thinking  # DeepSeek's field
        if answer.tool_calls:
            message["content"] = answer.text or None
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in answer.tool_calls
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model,
            "choices": [
                {
                    "index": index,
                    # n > 1: the other answers are the first one's words, rotated.
                    "message": {**message, "content": _rotated(answer.tokens, index)}
                    if index and message["content"] is not None
                    else message,
                    "logprobs": None,
                    "finish_reason": self._finish(answer),
                }
                for index in range(answer.choices)
            ],
            "usage": self._usage(answer, answer.output_tokens * answer.choices),
            "system_fingerprint": "fp_fake",
        }

    def stream_start(self, answer: Answer, body: dict[str, Any]) -> StreamWriter:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return OpenAIStreamWriter(self, answer, include_usage)


class OpenAIStreamWriter:
    def __init__(self, dialect: OpenAIDialect, answer: Answer, include_usage: bool) -> None:
        self.dialect = dialect
        self.answer = answer
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None, index: int = 0) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(self._envelope([choice], usage=None))

    def _envelope(
        self, choices: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.answer.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }
        if self.include_usage:
            data["usage"] = usage
        return data

    def head(self) -> list[bytes]:
        return [self._chunk({"role": "assistant", "content": "", "refusal": None}, None)]

    def thought(self, text: str) -> list[bytes]:
        # DeepSeek's reasoner: the reasoning in its own field, content null meanwhile.
        return [self._chunk({"content": None, "reasoning_content": text}, None)]

    def token(self, text: str) -> list[bytes]:
        return [self._chunk({"content": text}, None)]

    def other_choices(self) -> list[tuple[int, str]]:
        """(index, word) for the other answers of a request for several (n), streamed
        after the first: its words, rotated."""
        return [
            (index, ("" if number == 0 else " ") + word)
            for index in range(1, self.answer.choices)
            for number, word in enumerate(_rotated(self.answer.tokens, index).split(" "))
        ]

    def choice_token(self, index: int, text: str) -> list[bytes]:
        return [self._chunk({"content": text}, None, index)]

    def call_fragment(self, index: int, fragment: str, first: bool) -> list[bytes]:
        """A piece of call `index`'s arguments; its first opens it with its id and name."""
        chunks = []
        if first:
            call = self.answer.tool_calls[index]
            opening = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            chunks.append(self._chunk({"tool_calls": [opening]}, None))
        if fragment:
            piece = {"index": index, "function": {"arguments": fragment}}
            chunks.append(self._chunk({"tool_calls": [piece]}, None))
        return chunks

    def tail(self) -> list[bytes]:
        finish = self.dialect._finish(self.answer)
        chunks = [self._chunk({}, finish, index) for index in range(self.answer.choices)]
        if self.include_usage:
            output = self.answer.output_tokens * self.answer.choices
            usage = self.dialect._usage(self.answer, output)
            chunks.append(sse(self._envelope([], usage=usage)))
        chunks.append(sse("[DONE]"))
        return chunks

    def error(self) -> list[bytes]:
        return [sse(self.dialect.error_body(500))]


class AnthropicDialect:
    name: ClassVar[str] = "anthropic"
    generation_path: ClassVar[str] = "/v1/messages"

    _ERRORS: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low."),
        404: ("not_found_error", "model not found"),
        429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
        500: ("api_error", "Internal server error"),
        503: ("api_error", "Service unavailable"),
        529: ("overloaded_error", "Overloaded"),
    }

    @staticmethod
    def api_key(headers: dict[str, str]) -> str | None:
        # The API takes ``x-api-key``; current SDKs send ``Authorization: Bearer`` instead.
        return headers.get("x-api-key") or OpenAIDialect.api_key(headers)

    def error_body(self, status: int, message: str = "") -> dict[str, Any]:
        kind, default = self._ERRORS.get(status, self._ERRORS[500])
        return {
            "type": "error",
            "error": {"type": kind, "message": message or default},
            "request_id": f"req_{uuid.uuid4().hex[:24]}",
        }

    def models_body(self) -> dict[str, Any]:
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2025-01-01T00:00:00Z",
            }
            for m in FAKE_MODELS
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
        }

    @staticmethod
    def max_tokens(body: dict[str, Any]) -> int | None:
        value = body.get("max_tokens")
        return value if isinstance(value, int) else None

    @staticmethod
    def thinks(body: dict[str, Any]) -> bool:
        thinking = body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") == "enabled"

    def refusal(self, body: dict[str, Any]) -> str | None:
        """Why the real API would refuse this request's thinking or tool results, or None."""
        if reason := tools.refusal("anthropic", body):
            return reason
        for block in blocks(body):
            if block.get("type") == "thinking" and block.get("signature") != fake_signature(
                str(block.get("thinking", ""))
            ):
                return "messages: Invalid `signature` in `thinking` block"
            if block.get("type") == "redacted_thinking" and block.get("data") != REDACTED_DATA:
                return "messages: Invalid `data` in `redacted_thinking` block"
        if not self.thinks(body):
            return None
        budget = body["thinking"].get("budget_tokens")
        limit = self.max_tokens(body)
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if limit is None or limit <= budget:
            return "`max_tokens` must be greater than `thinking.budget_tokens`."
        temperature = body.get("temperature")
        if temperature is not None and temperature != 1:
            return "`temperature` may only be set to 1 when thinking is enabled."
        return None

    def usage(self, answer: Answer, output_tokens: int) -> dict[str, Any]:
        # Like the real API: input_tokens leaves out the tokens read from the cache.
        return {
            "input_tokens": max(
                answer.prompt_tokens - answer.cached_tokens - answer.cache_write_tokens, 0
            ),
            "cache_creation_input_tokens": answer.cache_write_tokens,
            "cache_read_input_tokens": answer.cached_tokens,
            "output_tokens": output_tokens,
        }

    def stop_reason(self, answer: Answer) -> str:
        if answer.tool_calls:
            return "tool_use"
        return "max_tokens" if answer.finished_by_length else "end_turn"

    def message(
        self, answer: Answer, content: list[dict[str, Any]], output_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self.usage(answer, output_tokens),
        }

    def completion_body(self, answer: Answer) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if answer.redacted:
            content.append({"type": "redacted_thinking", "data": answer.redacted})
        if answer.reasoning:
            thinking = answer.thinking
            signature = fake_signature(thinking)
            content.append({"type": "thinking", "thinking": thinking, "signature": signature})
        if answer.text or not answer.tool_calls:
            content.append({"type": "text", "text": answer.text})
        content += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
            for c in answer.tool_calls
        ]
        body = self.message(answer, content, answer.output_tokens)
        body["stop_reason"] = self.stop_reason(answer)
        return body

    def stream_start(self, answer: Answer, body: dict[str, Any]) -> StreamWriter:
        return AnthropicStreamWriter(self, answer)


class AnthropicStreamWriter:
    """Content blocks in order: a redacted_thinking block, a thinking block (its deltas,
    then its signature_delta), then the text block, each opened when it is reached."""

    def __init__(self, dialect: AnthropicDialect, answer: Answer) -> None:
        self.dialect = dialect
        self.answer = answer
        self.index = -1  # the open content block's index
        self.open = ""  # its type: "thinking", "text" or "" (none open)

    def _start(self, block: dict[str, Any]) -> list[bytes]:
        chunks = self._stop()
        self.index += 1
        self.open = block["type"]
        start = {"type": "content_block_start", "index": self.index, "content_block": block}
        return [*chunks, sse(start, "content_block_start")]

    def _stop(self) -> list[bytes]:
        if not self.open:
            return []
        chunks = []
        if self.open == "thinking":
            signature = fake_signature(self.answer.thinking)
            delta = {"type": "signature_delta", "signature": signature}
            chunks.append(self._delta(delta))
        self.open = ""
        stop = {"type": "content_block_stop", "index": self.index}
        return [*chunks, sse(stop, "content_block_stop")]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self.index, "delta": delta}
        return sse(event, "content_block_delta")

    def head(self) -> list[bytes]:
        start = {"type": "message_start", "message": self.dialect.message(self.answer, [], 1)}
        chunks = [sse(start, "message_start")]
        if self.answer.redacted:
            chunks += self._start({"type": "redacted_thinking", "data": self.answer.redacted})
        if self.answer.reasoning:
            chunks += self._start({"type": "thinking", "thinking": "", "signature": ""})
        elif self.answer.tokens or not self.answer.tool_calls:
            chunks += self._start({"type": "text", "text": ""})
        return [*chunks, sse({"type": "ping"}, "ping")]

    def thought(self, text: str) -> list[bytes]:
        return [self._delta({"type": "thinking_delta", "thinking": text})]

    def other_choices(self) -> list[tuple[int, str]]:
        return []  # the Messages API has no n: one answer

    def choice_token(self, index: int, text: str) -> list[bytes]:
        return self.token(text)

    def token(self, text: str) -> list[bytes]:
        chunks = [] if self.open == "text" else self._start({"type": "text", "text": ""})
        return [*chunks, self._delta({"type": "text_delta", "text": text})]

    def call_fragment(self, index: int, fragment: str, first: bool) -> list[bytes]:
        """A piece of call `index`'s arguments; its first opens its tool_use block."""
        chunks = []
        call = self.answer.tool_calls[index]
        if first:
            block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            chunks += self._start(block)
        if fragment:
            chunks.append(self._delta({"type": "input_json_delta", "partial_json": fragment}))
        return chunks

    def tail(self) -> list[bytes]:
        answer = self.answer
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.dialect.stop_reason(answer), "stop_sequence": None},
            # Cumulative, as Anthropic sends it: the totals so far, not an increment.
            "usage": self.dialect.usage(answer, answer.output_tokens),
        }
        text_due = self.open != "text" and not answer.tool_calls
        chunks = self._start({"type": "text", "text": ""}) if text_due else []
        return [
            *chunks,
            *self._stop(),
            sse(delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]

    def error(self) -> list[bytes]:
        return [sse(self.dialect.error_body(500), "error")]


StreamWriter = OpenAIStreamWriter | AnthropicStreamWriter
Dialect = OpenAIDialect | AnthropicDialect


def blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every content part or block of every message, in either wire format."""
    messages = body.get("messages")
    found: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found += [block for block in content if isinstance(block, dict)]
    return found


def _rotated(tokens: list[str], by: int) -> str:
    words = [token.strip() for token in tokens]
    return " ".join(words[by % len(words) :] + words[: by % len(words)]) if words else ""
