"""Price lookup and cost computation, exact in Decimal and integer nano-dollars."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from providers.adapters.base import Usage
from providers.kinds import ProviderKind
from usage.models import CURRENCY, NANOS_PER_USD, ModelPrice
from usage.price_cache import prices_of_kind

MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class PriceSnapshot:
    """The prices a record was costed with, kept on the record as JSON."""

    price_id: int
    model: str
    match: str
    input: Decimal
    output: Decimal
    cached_input: Decimal
    cache_write: Decimal
    valid_from: str
    currency: str = CURRENCY

    @classmethod
    def from_price(cls, price: ModelPrice) -> PriceSnapshot:
        # A blank cached/cache-write price means "billed like any input token".
        return cls(
            price_id=price.pk,
            model=price.model,
            match=price.match,
            input=Decimal(price.input_per_mtok),
            output=Decimal(price.output_per_mtok),
            cached_input=Decimal(
                price.input_per_mtok
                if price.cached_input_per_mtok is None
                else price.cached_input_per_mtok
            ),
            cache_write=Decimal(
                price.input_per_mtok
                if price.cache_write_per_mtok is None
                else price.cache_write_per_mtok
            ),
            valid_from=price.valid_from.isoformat(),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "price_id": self.price_id,
            "model": self.model,
            "match": self.match,
            "input": str(self.input),
            "output": str(self.output),
            "cached_input": str(self.cached_input),
            "cache_write": str(self.cache_write),
            "valid_from": self.valid_from,
            "currency": self.currency,
        }


def find_price(*, provider_kind: str, model: str, at: datetime) -> ModelPrice | None:
    """The price in force for `model` at `at`: an exact entry beats the longest prefix.

    Among versions of the winning entry, the newest `valid_from <= at` applies. The
    table is small (tens of rows), so candidates are filtered in Python, from the kind's
    rows kept briefly by `price_cache`.
    """
    candidates = [
        p
        for p in prices_of_kind(provider_kind)
        if p.valid_from <= at
        and (
            (p.match == ModelPrice.Match.EXACT and p.model == model)
            or (p.match == ModelPrice.Match.PREFIX and model.startswith(p.model))
        )
    ]
    if not candidates:
        return None

    def rank(p: ModelPrice) -> tuple[int, int, datetime]:
        return (p.match == ModelPrice.Match.EXACT, len(p.model), p.valid_from)

    return max(candidates, key=rank)


# Anthropic's API reports input_tokens *excluding* cache reads and cache writes, and the
# Anthropic adapter passes them through as reported; OpenAI (and compatible servers,
# DeepSeek) count cached reads inside prompt_tokens. Records store the whole prompt.
INPUT_EXCLUDES_CACHE = frozenset({ProviderKind.ANTHROPIC.value})


def normalized(provider_kind: str, usage: Usage) -> Usage:
    """The usage with input_tokens = the whole prompt, cache reads and writes included."""
    if provider_kind in INPUT_EXCLUDES_CACHE:
        whole = usage.input_tokens + usage.cached_input_tokens + usage.cache_write_tokens
        return replace(usage, input_tokens=whole)
    return usage


def billable_input_split(usage: Usage) -> tuple[int, int, int]:
    """(uncached, cache read, cache write) input tokens of a `normalized` usage.

    Clamped so that odd reports never yield a negative count.
    """
    cached = max(usage.cached_input_tokens, 0)
    written = max(usage.cache_write_tokens, 0)
    uncached = max(usage.input_tokens - cached - written, 0)
    return uncached, cached, written


def cost_nanos(usage: Usage, snapshot: PriceSnapshot) -> int:
    """Cost in nano-dollars. Reasoning tokens are part of output and are not added again."""
    uncached, cached, written = billable_input_split(usage)
    usd = (
        uncached * snapshot.input
        + cached * snapshot.cached_input
        + written * snapshot.cache_write
        + max(usage.output_tokens, 0) * snapshot.output
    ) / MTOK
    # Exact for prices with <= 3 decimals; rounding only guards admin-entered oddities.
    return int((usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def price_usage(
    *, provider_kind: str, model: str, usage: Usage, at: datetime
) -> tuple[int | None, PriceSnapshot | None]:
    """(cost in nanos, snapshot), or (None, None) when the model has no price."""
    price = find_price(provider_kind=provider_kind, model=model, at=at)
    if price is None:
        return None, None
    snapshot = PriceSnapshot.from_price(price)
    return cost_nanos(usage, snapshot), snapshot
