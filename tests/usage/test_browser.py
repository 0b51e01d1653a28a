"""The usage report in headless Chromium: the server-side SVG chart really renders."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import CHROMIUM
from tests.usage.factories import make_record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_report_chart_renders_in_chromium(live_server, client, admin_user, openai, anthropic):
    from playwright.sync_api import sync_playwright

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
    ARTIFACTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
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
        page.screenshot(path=str(ARTIFACTS / "usage-report-test.png"), full_page=True)
        browser.close()
