"""The two wire formats the fake upstream speaks: OpenAI chat completions and Anthropic messages.

Each dialect turns "these tokens, this usage, this fault" into the exact JSON and
server-sent events the real API sends, so the real SDKs parse them unchanged.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

# Model names the fake publishes in its models lists.
FAKE_MODELS = ("fake-model", "fake-model-large", "demo-model")


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

    @property
    def text(self) -> str:
        return "".join(self.tokens)


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
        return "length" if answer.finished_by_length else "stop"

    def completion_body(self, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text,
            "refusal": None,
            "annotations": [],
        }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(answer),
                }
            ],
            "usage": self._usage(answer, len(answer.tokens)),
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

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
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

    def token(self, text: str) -> list[bytes]:
        return [self._chunk({"content": text}, None)]

    def tail(self) -> list[bytes]:
        chunks = [self._chunk({}, self.dialect._finish(self.answer))]
        if self.include_usage:
            usage = self.dialect._usage(self.answer, len(self.answer.tokens))
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
        body = self.message(answer, [{"type": "text", "text": answer.text}], len(answer.tokens))
        body["stop_reason"] = self.stop_reason(answer)
        return body

    def stream_start(self, answer: Answer, body: dict[str, Any]) -> StreamWriter:
        return AnthropicStreamWriter(self, answer)


class AnthropicStreamWriter:
    def __init__(self, dialect: AnthropicDialect, answer: Answer) -> None:
        self.dialect = dialect
        self.answer = answer

    def head(self) -> list[bytes]:
        start = {"type": "message_start", "message": self.dialect.message(self.answer, [], 1)}
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        return [
            sse(start, "message_start"),
            sse(block, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ]

    def token(self, text: str) -> list[bytes]:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }
        return [sse(delta, "content_block_delta")]

    def tail(self) -> list[bytes]:
        answer = self.answer
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.dialect.stop_reason(answer), "stop_sequence": None},
            # Cumulative, as Anthropic sends it: the totals so far, not an increment.
            "usage": self.dialect.usage(answer, len(answer.tokens)),
        }
        return [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]

    def error(self) -> list[bytes]:
        return [sse(self.dialect.error_body(500), "error")]


StreamWriter = OpenAIStreamWriter | AnthropicStreamWriter
Dialect = OpenAIDialect | AnthropicDialect
