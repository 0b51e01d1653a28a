"""p50 / p95 time to first token and latency for the report.

Computed over the most recent upstream attempts in range that match the filters, at
most PERCENTILE_SAMPLE of them: exact for smaller ranges, a bounded sample (and the
page says so) for larger ones. The rows come in created_at order through one of the
(dimension, created_at) indexes, so the cost does not grow with the table; sorting at
most 5,000 integers in Python is cheaper than a second DB round trip per percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

from usage.models import OUTCOME_OVER_BUDGET
from usage.reports import ReportQuery

PERCENTILE_SAMPLE = 5000


@dataclass
class Percentiles:
    ttft_p50: int | None
    ttft_p95: int | None
    latency_p50: int | None
    latency_p95: int | None
    sample_size: int
    sampled: bool  # True when the range held more attempts than the sample


def _nearest_rank(values: list[int], pct: int) -> int | None:
    if not values:
        return None
    values = sorted(values)
    rank = max(1, -(-pct * len(values) // 100))  # ceil(pct/100 * n), nearest-rank method
    return values[rank - 1]


def percentiles(q: ReportQuery) -> Percentiles:
    upstream = (
        q.raw_records()
        .filter(cache_hit=False)
        .exclude(outcome=OUTCOME_OVER_BUDGET)
        .order_by("-created_at")
    )
    sample = list(upstream.values_list("ttft_ms", "latency_ms")[: PERCENTILE_SAMPLE + 1])
    sampled = len(sample) > PERCENTILE_SAMPLE
    sample = sample[:PERCENTILE_SAMPLE]
    ttft = [t for t, _ in sample if t is not None]
    latency = [lat for _, lat in sample if lat is not None]
    return Percentiles(
        _nearest_rank(ttft, 50),
        _nearest_rank(ttft, 95),
        _nearest_rank(latency, 50),
        _nearest_rank(latency, 95),
        len(sample),
        sampled,
    )
