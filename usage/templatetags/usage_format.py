"""Number formatting for the usage pages (django.contrib.humanize is not installed)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

register = template.Library()
DASH = "\u2013"  # an en dash for "no value"


@register.filter
def usd(value: Decimal | None, places: int = 4) -> str:
    """$1,234.5678; "unknown" for None (an unpriced cost is not $0)."""
    if value is None:
        return "unknown"
    quantum = Decimal(1).scaleb(-int(places))
    return f"${Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP):,}"


@register.filter
def num(value: int | None) -> str:
    return DASH if value is None else f"{int(value):,}"


@register.filter
def pct(value: Decimal | None) -> str:
    return DASH if value is None else f"{value}%"


@register.filter
def ms(value: int | None) -> str:
    if value is None:
        return DASH
    return f"{value:,} ms" if value < 10_000 else f"{value / 1000:.1f} s"


@register.filter
def compact(value: int | None) -> str:
    """17735216 -> 17.7M: for headline figures (the exact value goes in a title)."""
    if value is None:
        return DASH
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= size:
            return (
                f"{value / size:.3g}{suffix}"
                if value < size * 1000
                else f"{value // size:,}{suffix}"
            )
    return str(value)
