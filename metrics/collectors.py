"""The task queue's depth, read from huey's storage when Prometheus scrapes.

Not a gauge kept by the processes: the queue lives in Redis (scale-out) or huey's SQLite
file (embedded), and whoever serves /metrics can count it. Every web host of a scale-out
deployment reports the same queue: aggregate with max(), not sum().
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class QueueDepthCollector(Collector):
    NAME = "switchboard_queue_tasks"

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from huey.contrib.djhuey import HUEY

        try:
            pending, scheduled = HUEY.pending_count(), HUEY.scheduled_count()
        except Exception:  # the queue is down: no sample, /healthz says so
            logger.warning("metrics: the task queue could not be read", exc_info=True)
            return
        family = GaugeMetricFamily(
            self.NAME,
            "Tasks in the huey queue: pending (waiting for a worker) and scheduled (a "
            "delayed retry or a periodic run not due yet).",
            labels=["state"],
        )
        family.add_metric(["pending"], float(pending))
        family.add_metric(["scheduled"], float(scheduled))
        yield family
