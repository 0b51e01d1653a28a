"""The values an embeddings call passes across the adapter interface.

A vector travels as the bytes of its little-endian float32 values: what OpenAI's
``encoding_format="base64"`` carries, what the models compute, and a quarter of the memory
of a list of Python floats (2,048 inputs of 3,072 dimensions is 25 MB as bytes, about
200 MB as lists). The gateway turns them into floats or base64 only for its answer.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from providers.adapters.base import Attempt, Usage
from providers.adapters.common import estimate_tokens
from providers.errors import ProviderError

TokenIds = tuple[int, ...]


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    # Either texts or token arrays (OpenAI's token input), never a mix; one vector each.
    inputs: tuple[str, ...] | tuple[TokenIds, ...]
    dimensions: int | None = None  # None: the model's own size

    @property
    def token_input(self) -> bool:
        return bool(self.inputs) and not isinstance(self.inputs[0], str)

    def input_size(self) -> int:
        """The characters of the texts, or the tokens of the token arrays: what limits,
        estimates and logs count (never the text itself)."""
        return sum(len(item) for item in self.inputs)


@dataclass
class EmbeddingResult:
    model: str
    vectors: list[bytes] = field(default_factory=list, repr=False)  # little-endian float32
    usage: Usage = field(default_factory=Usage)  # input tokens only
    error: ProviderError | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def embedding_tokens_estimate(request: EmbeddingRequest) -> int:
    """The input's tokens when the provider did not say: token arrays exactly, text at the
    adapters' rough ratio."""
    if request.token_input:
        return request.input_size()
    return sum(estimate_tokens(text) for text in request.inputs if isinstance(text, str))


def float32_bytes(values: Iterable[float]) -> bytes:
    """Floats as little-endian float32 bytes (rounded to float32, as a model's are)."""
    packed = array.array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def floats(vector: bytes) -> list[float]:
    """Little-endian float32 bytes as Python floats: each exactly the float32 value."""
    unpacked = array.array("f")
    unpacked.frombytes(vector)
    if sys.byteorder == "big":
        unpacked.byteswap()
    return unpacked.tolist()
