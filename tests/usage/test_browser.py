"""The usage report in headless Chromium: the server-side SVG chart really renders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.fixtures.browser import screenshot
from tests.usage.factories import make_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_chart_renders_in_chromium(
    open_page, live_server, client, admin_user, openai, anthropic
):
    now = timezone.now()
    for days_ago in range(7):
        at = now - timedelta(days=days_ago, minutes=5)
        make_record(
            openai,
            "gpt-4o",
            at,
            input_tokens=1000 * (days_ago + 1),
            output_tokens=400,
            cost_nanos=2_000_000 * (days_ago + 1),
            ttft_ms=300,
            latency_ms=1200,
        )
        make_record(
            anthropic,
            "claude-3-5-haiku",
            at,
            input_tokens=500,
            output_tokens=200,
            cost_nanos=1_200_000,
            ttft_ms=250,
            latency_ms=900,
        )
    client.force_login(admin_user)
    session = client.cookies["sessionid"].value
    page = open_page(live_server.url, viewport={"width": 1400, "height": 1000})
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page.goto(f"{live_server.url}/admin/usage/usagerecord/report/?range=7d")
    chart = page.locator("svg.usage-chart")
    chart.wait_for()
    box = chart.bounding_box()
    assert box["width"] > 600
    assert box["height"] > 150
    assert page.locator("svg.usage-chart rect.bar").count() == 7
    # Bars have real heights, i.e. the numbers reached the drawing.
    heights = page.eval_on_selector_all(
        "svg.usage-chart rect.bar", "els => els.map(e => e.getBBox().height)"
    )
    assert all(h > 0 for h in heights)
    assert page.locator("svg.usage-chart polyline.line").count() == 1
    assert page.locator('[data-kpi="requests"]').inner_text() == "14"
    screenshot(page, "usage-report-test")
