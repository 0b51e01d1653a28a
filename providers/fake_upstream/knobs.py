"""What a fake upstream request should do: timing, length, text and faults.

Knobs come from three places, later ones winning:

1. the server's defaults (`FakeUpstream(defaults=...)`, `manage.py fake_upstream --tokens 20`);
2. a path prefix, so a Provider's base URL can carry them:
   ``http://127.0.0.1:PORT/knobs/tokens=5&fault=429/v1`` (OpenAI) or
   ``http://127.0.0.1:PORT/knobs/tokens=5&fault=429`` (Anthropic);
3. a suffix on the model name: ``fake-model?ttft=50&delay=10&tokens=20&seed=3&fault=429&after=5``.

Keys (times in milliseconds):

- ``ttft``: wait before the first token; ``delay``: wait between tokens;
- ``tokens``: how many tokens (words) to answer with (capped by the request's max_tokens);
- ``seed``: picks the deterministic text; ``cached`` / ``reasoning``: token counts reported
  as cached input / reasoning output in usage;
- ``fault``: one of ``401 402 429 500 503 529`` (an HTTP error in the provider's own JSON
  shape), ``drop`` (close the connection after ``after`` tokens), ``stall`` (stop sending after
  ``after`` tokens and hold the connection open), ``error`` (an in-stream error event after
  ``after`` tokens), ``end`` (end the body cleanly after ``after`` tokens, with no finish
  and no ``[DONE]``, as a proxy that closes a streamed response does), ``garbage`` (an
  event that is not JSON after ``after`` tokens, then the end), ``redirect`` (a 307
  to ``/redirected`` on the fake, to show that a client does not carry its key along),
  ``html`` (a 200 with an HTML page in place of the answer, as a captive portal or a base
  URL pointing at a web site gives);
- ``after``: tokens sent before a ``drop`` / ``stall`` / ``error`` / ``end`` / ``garbage``
  fault (default 0);
- ``retry_after`` (seconds) and ``retry_after_ms``: headers sent with a 429/503/529;
- ``nul``: the token at that position (from 1) ends in a NUL character, which models do
  emit and PostgreSQL refuses to store;
- ``surrogate``: the token at that position (from 1) ends in a lone surrogate (sent as the
  JSON escape ``\\ud800``), which no UTF-8 can carry;
- ``preamble=N``: a turn that calls tools says N words first ("Let me check..."), as
  Anthropic's models often do;
- ``text_only=1``: refuse a request carrying an image with a 400, as a model without
  vision does;
- ``keyless=1``: answer without a key, as a local server (Ollama, llama.cpp without
  --api-key) does; what the client sent is still recorded (``auth_scheme``);
- ``think``: reasoning tokens streamed before the answer (the timing knobs and
  ``after`` count them as tokens): DeepSeek's ``reasoning_content`` on the OpenAI
  format, always; on the Anthropic format only for a request with thinking enabled, as
  a ``thinking`` block closed by a ``signature_delta`` (a deterministic fake signature,
  `fake_signature`), and counted in the usage's output tokens either way (OpenAI's
  ``reasoning_tokens`` too, unless ``reasoning`` says otherwise);
- ``redacted=1``: with thinking on the Anthropic format, a ``redacted_thinking`` block
  (opaque data, `REDACTED_DATA`) before the thinking block;
- ``parallel``: how many tools a request offering tools is answered with calls to at
  once (default 1; see `tools.py`, which also answers a turn of tool results in text).

On the Anthropic format, a request with thinking enabled is refused (400) as the real API
refuses it: ``budget_tokens`` under 1,024 or not below ``max_tokens``, a temperature other
than 1, or a thinking block sent back whose signature is not the one the fake made.

A key containing the word ``invalid`` is always rejected with 401.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl

HTTP_FAULTS = frozenset({"401", "402", "429", "500", "503", "529"})
REDIRECT_FAULT = "redirect"
HTML_FAULT = "html"
STREAM_FAULTS = frozenset({"drop", "stall", "error", "end", "garbage"})

_PROSE = (
    "switchboard routes every message through a patient operator who listens "
    "carefully connects the right line and keeps the conversation flowing while "
    "tokens arrive one by one like small bright lamps on an old wooden panel"
)
_WORDS = _PROSE.split()
_THOUGHT = (
    "hmm the caller wants a clear answer so first check which line is free then weigh "
    "each option and wait before connecting"
)
_THOUGHT_WORDS = _THOUGHT.split()


@dataclass(frozen=True)
class Knobs:
    ttft_ms: int = 0
    delay_ms: int = 0
    tokens: int = 12
    seed: int = 0
    cached: int = 0
    reasoning: int = 0
    fault: str = ""
    after: int = 0
    retry_after: float | None = None
    retry_after_ms: int | None = None
    nul: int = 0  # the token at this 1-based position ends in a NUL character
    surrogate: int = 0  # the token at this 1-based position ends in a lone surrogate
    keyless: int = 0  # 1: serve without a key, as a local server (Ollama) does
    text_only: int = 0  # 1: a request with an image is refused (400), as without vision
    preamble: int = 0  # words of text before the tool calls of a turn that makes some
    think: int = 0  # reasoning tokens streamed before the answer
    redacted: int = 0  # 1: a redacted_thinking block too (Anthropic, thinking on)
    parallel: int = 1  # tool calls made at once, when the request offers tools

    def text_tokens(self, count: int | None = None) -> list[str]:
        """The deterministic answer for this seed, as a list of tokens (words)."""
        rng = random.Random(self.seed)
        n = self.tokens if count is None else count
        tokens = [("" if i == 0 else " ") + rng.choice(_WORDS) for i in range(n)]
        if 0 < self.nul <= n:
            tokens[self.nul - 1] += "\x00"
        if 0 < self.surrogate <= n:
            tokens[self.surrogate - 1] += "\ud800"
        return tokens

    def thought_tokens(self, count: int | None = None) -> list[str]:
        """The deterministic reasoning for this seed, as a list of tokens (words)."""
        rng = random.Random(f"think-{self.seed}")
        n = self.think if count is None else count
        return [("" if i == 0 else " ") + rng.choice(_THOUGHT_WORDS) for i in range(n)]


# Short names accepted in a knob string, and the field each one sets.
_ALIASES = {"ttft": "ttft_ms", "delay": "delay_ms"}
_FIELD_TYPES = {f.name: f.type for f in fields(Knobs)}


def apply_knob_string(base: Knobs, spec: str) -> Knobs:
    """`base` with the ``key=value&key=value`` settings in `spec` applied.

    Unknown keys and unparsable values raise ValueError so a typo fails loudly.
    """
    changes: dict[str, Any] = {}  # each converted to its field's type by _convert
    for key, value in parse_qsl(spec, keep_blank_values=True):
        name = _ALIASES.get(key, key)
        if name not in _FIELD_TYPES:
            raise ValueError(f"unknown fake upstream knob {key!r}")
        changes[name] = _convert(name, value)
    fault = str(changes.get("fault", base.fault))
    if fault and fault not in HTTP_FAULTS | STREAM_FAULTS | {REDIRECT_FAULT, HTML_FAULT}:
        raise ValueError(f"unknown fake upstream fault {fault!r}")
    return replace(base, **changes)


def _convert(name: str, value: str) -> object:
    if name == "fault":
        return value
    if name == "retry_after":
        return float(value)
    return int(value)


def split_model(model: str) -> tuple[str, str]:
    """``"fake-model?tokens=3"`` -> ``("fake-model", "tokens=3")``."""
    base, _, spec = model.partition("?")
    return base, spec
