"""The staff usage report page and its CSV exports (mounted by UsageRecordAdmin.get_urls)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone

from usage import exports, reports, team_reports
from usage.charts import cost_tokens_chart
from usage.fallbacks import fallback_report
from usage.forms import DEFAULT_PRESET, ReportForm
from usage.models import CURRENCY, ModelPrice
from usage.percentiles import PERCENTILE_SAMPLE, percentiles
from usage.rollup import rolled_until

# (table name, group key, label column header, query parameter holding its sort)
BREAKDOWNS = [
    ("provider", "provider_id", "Provider", "sort_provider"),
    ("model", "model", "Model", "sort_model"),
    ("user", "user_id", "User", "sort_user"),
]
COLUMNS = [
    ("label", None),
    ("requests", "Requests"),
    ("input", "Tokens in"),
    ("output", "Tokens out"),
    ("cost", f"Cost ({CURRENCY})"),
    ("errors", "Error rate"),
    ("cache", "Cache hits"),
]


def _sort_headers(
    params: QueryDict, param: str, current: str, label: str
) -> list[dict[str, str | bool]]:
    """Header links for one table: clicking a column sorts by it, again reverses it."""
    headers = []
    for key, title in COLUMNS:
        q = params.copy()
        q.pop("export", None)
        active = current.lstrip("-") == key
        descending = current.startswith("-")
        # Text sorts A-Z first; numbers biggest first; clicking the active column flips.
        first = key if key == "label" else f"-{key}"
        q[param] = (key if descending else f"-{key}") if active else first
        headers.append(
            {
                "title": title or label,
                "url": "?" + q.urlencode(),
                "arrow": ("▼" if descending else "▲") if active else "",
                "numeric": key != "label",
            }
        )
    return headers


def _export_url(params: QueryDict, what: str) -> str:
    q = params.copy()
    q["export"] = what
    return "?" + q.urlencode()


def usage_report(request: HttpRequest) -> HttpResponseBase:
    # admin_view has already required an active staff user; viewing usage also needs
    # the model's view permission (a superuser has it).
    if not request.user.has_perm("usage.view_usagerecord"):
        raise PermissionDenied
    data = request.GET.copy()
    # Sort and export links may carry no range: show (and use) the default preset.
    data.setdefault("range", DEFAULT_PRESET)
    form = ReportForm(data)
    query = form.to_query()
    export = request.GET.get("export", "")
    if export == "records":
        return exports.records_csv(query)

    report = reports.build(query)
    tables: list[dict[str, Any]] = []
    for name, group, label, param in BREAKDOWNS:
        sort = request.GET.get(param, reports.DEFAULT_SORT)
        if sort.lstrip("-") not in reports.SORT_KEYS:
            sort = reports.DEFAULT_SORT
        rows = report.breakdown(group, sort)
        if export == name:
            return exports.breakdown_csv(name, label.lower(), rows, query)
        tables.append(
            {
                "name": name,
                "label": label,
                "rows": rows,
                "headers": _sort_headers(request.GET, param, sort, label),
                "export_url": _export_url(request.GET, name),
            }
        )
    if team_reports.teams_exist() or query.team_id is not None:
        sort = request.GET.get("sort_team", reports.DEFAULT_SORT)
        if sort.lstrip("-") not in reports.SORT_KEYS:
            sort = reports.DEFAULT_SORT
        rows = team_reports.by_team(query, sort)
        if export == "team":
            return exports.breakdown_csv("team", "team", rows, query)
        tables.append(
            {
                "name": "team",
                "label": "Team",
                "rows": rows,
                "headers": _sort_headers(request.GET, "sort_team", sort, "Team"),
                "export_url": _export_url(request.GET, "team"),
                "note": "Each call counts toward the teams its user was in when it was "
                "made: a user in two teams is in both rows.",
            }
        )
    days = report.days()
    if export == "day":
        return exports.breakdown_csv("day", "day", days, query)
    fallbacks = fallback_report(query)
    if export in ("fallback_alias", "fallback_target"):
        return exports.fallback_csv(fallbacks, export.removeprefix("fallback_"), query)

    model_rows = tables[1]["rows"]
    context = {
        **admin.site.each_context(request),
        "title": "Usage report",
        "form": form,
        "query": query,
        "totals": report.totals,
        "percentiles": percentiles(query),
        "sample_limit": PERCENTILE_SAMPLE,
        "chart": cost_tokens_chart(days),
        "days": days,
        "tables": tables,
        "unpriced_models": [r for r in model_rows if r.totals.unpriced],
        "model_names": sorted(
            {r.label for r in model_rows} | set(ModelPrice.objects.values_list("model", flat=True))
        ),
        "fallbacks": fallbacks,
        "fallback_alias_export_url": _export_url(request.GET, "fallback_alias"),
        "fallback_target_export_url": _export_url(request.GET, "fallback_target"),
        "records_export_url": _export_url(request.GET, "records"),
        "day_export_url": _export_url(request.GET, "day"),
        "rolled_until": rolled_until(),
        "currency": CURRENCY,
        "time_zone": timezone.get_current_timezone_name(),
    }
    return TemplateResponse(request, "admin/usage/report.html", context)
