"""CSV exports of the report: the filtered raw records (streamed) and each breakdown.

Breakdown CSVs are written from the same `Row` objects the page renders, so they match
the page; costs carry full precision (the page rounds to 4 decimals for reading).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from usage.fallbacks import FallbackReport
from usage.models import CURRENCY, usd_text
from usage.reports import ReportQuery, Row

BREAKDOWN_HEADER = [
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "output_tokens",
    "total_tokens",
    f"cost_{CURRENCY.lower()}",
    "unpriced_requests",
    "errors",
    "refused_over_budget",
    "cache_hits",
    "error_rate_pct",
    "cache_hit_rate_pct",
]
RECORD_FIELDS = [
    "created_at",
    "provider__name",
    "model",
    "user__username",
    "source",
    "outcome",
    "attempt_number",
    "status_code",
    "cache_hit",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "output_tokens",
    "total_tokens",
    "tokens_estimated",
    "ttft_ms",
    "latency_ms",
    "cost_nanos",
    "request_id",
    "alias",
    "routing_step",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _filename(name: str, q: ReportQuery) -> str:
    return f"usage-{name}-{q.first_day.isoformat()}-{q.last_day.isoformat()}.csv"


def _none_blank(value: object) -> object:
    return "" if value is None else value


def _cell(value: object) -> object:
    """Neutralise spreadsheet formulas in text cells (model names come from API callers)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return _none_blank(value)


def breakdown_rows(label_header: str, rows: list[Row]) -> list[list[object]]:
    out: list[list[object]] = [[label_header, *BREAKDOWN_HEADER]]
    for row in rows:
        t = row.totals
        out.append(
            [
                _cell(row.label),
                t.requests,
                t.input_tokens,
                t.cached_input_tokens,
                t.cache_write_tokens,
                t.reasoning_tokens,
                t.output_tokens,
                t.total_tokens,
                usd_text(t.cost_nanos),
                t.unpriced,
                t.errors,
                t.refused,
                t.cache_hits,
                _none_blank(t.error_rate),
                _none_blank(t.cache_hit_rate),
            ]
        )
    return out


def breakdown_csv(name: str, label_header: str, rows: list[Row], q: ReportQuery) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(name, q)}"'
    csv.writer(response).writerows(breakdown_rows(label_header, rows))
    return response


def fallback_rows(report: FallbackReport, by: str) -> list[list[object]]:
    """The fallback table `by` ("alias" or "target") as CSV rows, header first."""
    if by == "alias":
        out: list[list[object]] = [
            ["alias", "routed_calls", "needed_fallback", "answered_after_fallback", "rate_pct"]
        ]
        for a in report.by_alias:
            rate = _none_blank(a.fallback_rate)
            out.append([_cell(a.alias), a.calls, a.fell_back, a.answered_after, rate])
        return out
    out = [["provider", "model", "failed_fell_back", "answered_after_fallback", "failed_after"]]
    for t in report.by_target:
        out.append(
            [
                _cell(t.provider_name),
                _cell(t.model),
                t.failed_over,
                t.answered_after,
                t.failed_after,
            ]
        )
    return out


def fallback_csv(report: FallbackReport, by: str, q: ReportQuery) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"fallback-{by}"
    response["Content-Disposition"] = f'attachment; filename="{_filename(name, q)}"'
    csv.writer(response).writerows(fallback_rows(report, by))
    return response


def _record_lines(q: ReportQuery) -> Iterator[list[Any]]:
    header = [f.replace("__", "_") for f in RECORD_FIELDS]
    header[header.index("cost_nanos")] = f"cost_{CURRENCY.lower()}"
    yield header
    cost_at = RECORD_FIELDS.index("cost_nanos")
    records = q.raw_records().order_by("created_at", "id").values_list(*RECORD_FIELDS)
    for values in records.iterator(chunk_size=2000):
        line = list(values)
        line[0] = timezone.localtime(line[0]).isoformat()
        nanos = line[cost_at]
        # Blank = unknown cost (an unpriced model), which is not the same as 0.
        line[cost_at] = "" if nanos is None else usd_text(nanos)
        yield [_cell(v) for v in line]


def records_csv(q: ReportQuery) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in _record_lines(q)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename("records", q)}"'
    return response
