"""The Grafana dashboard under deploy/ queries only metrics that Switchboard exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from metrics import instruments
from metrics.collectors import QueueDepthCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


def exported() -> set[str]:
    names = {
        family.name
        for metric in vars(instruments).values()
        if isinstance(metric, MetricWrapperBase)
        for family in metric.describe()
    }
    return names | {QueueDepthCollector.NAME}


def test_every_query_of_the_dashboard_names_an_exported_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"switchboard_\w+", target["expr"]))
    assert queried, "the dashboard queries something"
    bases = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    assert bases <= exported(), bases - exported()
    assert exported() <= bases, f"not on the dashboard: {exported() - bases}"
