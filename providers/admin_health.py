"""The provider admin's health column and panel: the last hour's upstream attempts, error
rate by kind and time to first token from the usage records (`usage.provider_health`),
and which of the provider's alias targets cool down now (`routing.health`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from routing.health import cooling_targets
from usage.provider_health import ProviderHealth, provider_health

SPAN = timedelta(hours=1)
# Reading usage is the usage report's permission; the provider admin shows health with it.
PERMISSION = "usage.view_usagerecord"
NO_ATTEMPTS = mark_safe('<span class="quiet">no attempts</span>')
NO_ERRORS = mark_safe("<li>No errors.</li>")
NOT_COOLING = mark_safe("<li>No alias target of this provider is cooling down.</li>")


@dataclass(frozen=True)
class Health:
    usage: ProviderHealth
    cooling: dict[str, float]  # model -> time of its last failure


def may_see_health(request: HttpRequest) -> bool:
    return bool(request.user.has_perm(PERMISSION))


def health_of(provider_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Health]:
    """Every provider's health: four queries and one cache read, whatever their number."""
    ids = list(provider_ids)
    usage = provider_health(provider_ids=ids, since=timezone.now() - SPAN)
    cooling = cooling_targets(ids)
    return {pk: Health(usage[pk], cooling.get(pk, {})) for pk in ids}


def _ms(value: int | None) -> str:
    return "—" if value is None else f"{value} ms"


def summary(health: Health) -> SafeString:
    """One line for the change list."""
    u = health.usage
    if not u.attempts:
        line = NO_ATTEMPTS
    else:
        line = format_html(
            "{} attempts · {}% errors · TTFT {} / {}",
            u.attempts,
            u.error_rate,
            _ms(u.ttft_p50),
            _ms(u.ttft_p95),
        )
    if health.cooling:
        models = ", ".join(sorted(health.cooling))
        return format_html(
            '{}<br><strong class="errornote">Cooling down: {}</strong>', line, models
        )
    return line


def detail(health: Health) -> SafeString:
    """The change page's panel."""
    u = health.usage
    kinds = format_html_join(
        "", "<li>{}: {} ({}%)</li>", ((e.label, e.count, e.rate) for e in u.by_kind())
    )
    cooling = format_html_join(
        "",
        "<li><strong>{}</strong> cooling down (last failure {} UTC)</li>",
        (
            (model, datetime.fromtimestamp(since, tz=UTC).strftime("%H:%M:%S"))
            for model, since in sorted(health.cooling.items())
        ),
    )
    return format_html(
        '<div class="provider-health">'
        "<p>{} upstream attempts in the last hour; error rate {}.</p>"
        "<ul>{}</ul>"
        "<p>Time to first token: p50 {}, p95 {}.</p>"
        "<ul>{}</ul></div>",
        u.attempts,
        "—" if u.error_rate is None else f"{u.error_rate}%",
        kinds or NO_ERRORS,
        _ms(u.ttft_p50),
        _ms(u.ttft_p95),
        cooling or NOT_COOLING,
    )
