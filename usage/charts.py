"""A server-side SVG chart of cost (bars) and tokens (line) per day: no JS, no CDN.

Only numbers and ISO dates go into the markup, and they are escaped anyway. Floats are
used for pixel positions only; the money shown in labels and tooltips is Decimal.
"""

from __future__ import annotations

import math
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from usage.reports import Row

WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 70, 34, 40
BAR_COLOUR, LINE_COLOUR = "#417690", "#e07b39"


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above value (an axis maximum)."""
    if value <= 0:
        return 1.0
    exp: float = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _money(value: float, step: float) -> str:
    """An axis label with as many decimals as the tick step needs (at least cents)."""
    if step >= 100 or value == 0:
        return f"${value:,.0f}"
    places = 2 if step >= 0.01 else 1 - math.floor(math.log10(step))
    return f"${value:,.{places}f}"


def _tokens(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:g}"


def cost_tokens_chart(days: list[Row]) -> SafeString:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(len(days), 1)
    cost_max = nice_ceiling(max((float(d.totals.cost) for d in days), default=0))
    tok_max = nice_ceiling(max((d.totals.total_tokens for d in days), default=0))
    slot = plot_w / n
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg class="usage-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'xmlns="http://www.w3.org/2000/svg" aria-label="Cost and tokens per day">',
        f'<text x="{LEFT}" y="16" class="legend"><tspan fill="{BAR_COLOUR}">■</tspan> cost (USD)'
        f'<tspan dx="18" fill="{LINE_COLOUR}">●</tspan> tokens</text>',
    ]
    for i in range(5):  # grid lines and both axes' labels
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(_money(cost_max * i / 4, cost_max / 4))}</text>"
            f'<text x="{WIDTH - RIGHT + 8}" y="{y + 4:.1f}" class="axis">'
            f"{escape(_tokens(tok_max * i / 4))}</text>"
        )
    label_every = max(1, math.ceil(n / 10))
    points = []
    for i, d in enumerate(days):
        cx = LEFT + slot * i + slot / 2
        h = plot_h * float(d.totals.cost) / cost_max
        cost = d.totals.cost.quantize(Decimal("0.0001"))
        tip = escape(
            f"{d.label}: ${cost}, {d.totals.total_tokens:,} tokens, {d.totals.requests:,} requests"
        )
        parts.append(
            f'<rect class="bar" x="{cx - bar_w / 2:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{bar_w:.1f}" height="{h:.1f}" fill="{BAR_COLOUR}"><title>{tip}</title></rect>'
        )
        points.append((cx, TOP + plot_h - plot_h * d.totals.total_tokens / tok_max))
        if i % label_every == 0:
            parts.append(
                f'<text x="{cx:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" class="axis">'
                f"{escape(d.key.strftime('%b %-d'))}</text>"
            )
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{LINE_COLOUR}" '
            'stroke-width="2" stroke-linejoin="round"/>'
        )
        if len(points) <= 62:
            parts.extend(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{LINE_COLOUR}"/>'
                for x, y in points
            )
    if not any(d.totals.requests for d in days):
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
            'class="legend">No usage in this range</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        'class="baseline"/></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 - built from numbers and escaped text only
