"""How long a task waits in the embedded SQLite queue before a worker thread takes it,
and what the idle workers cost.

Stock SqliteHuey cannot block on an empty queue: each idle worker thread polls, sleeping
`initial_delay`, growing by `backoff` up to `max_delay` (huey's documented consumer
options). The shipped storage (generation/huey_storage.py) wakes a waiting worker when
a task is queued in the process. Printed side by side, one run: pick-up latency after
an idle spell (median, p95, max over the samples) and the CPU an idle consumer burns,
for the shipped storage and for stock SqliteHuey at several polling settings.

Run: .venv/bin/python -m tests.bench.bench_queue_wake [--samples 40] [--workers 64]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from typing import Any

import django
from huey import SqliteHuey

from tests.bench import common


def _measure(
    huey_class: type[SqliteHuey], options: dict[str, Any], *, workers: int, samples: int
) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="bench-queue-")
    huey = huey_class("bench", filename=f"{folder}/q.sqlite3")
    started: list[float] = []
    ran = threading.Event()

    @huey.task()
    def mark() -> None:
        started.append(time.monotonic())
        ran.set()

    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False, **options
    )
    from config.embedded_worker import start_consumer

    start_consumer(consumer)  # as the embedded server does (keeps the signal handlers)
    latencies = []
    try:
        time.sleep(3)  # every thread idle, its back-off grown
        cpu_before, wall_before = time.process_time(), time.monotonic()
        time.sleep(3)
        idle_cpu = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        for _ in range(samples):
            time.sleep(random.uniform(0.3, 1.5))  # an idle spell of varying length
            ran.clear()
            enqueued = time.monotonic()
            mark()
            if not ran.wait(15):
                raise RuntimeError("the task was not picked up within 15 s")
            latencies.append((started[-1] - enqueued) * 1000)
    finally:
        consumer.stop(graceful=True)
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "idle_cpu_pct": round(idle_cpu * 100, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args()
    from generation.huey_storage import NotifyingSqliteHuey

    scenarios: dict[str, tuple[type[SqliteHuey], dict[str, Any]]] = {
        "shipped (woken)": (NotifyingSqliteHuey, {}),
        "stock, max_delay 0.5": (SqliteHuey, {"initial_delay": 0.01, "max_delay": 0.5}),
        "stock, max_delay 0.1": (SqliteHuey, {"initial_delay": 0.01, "max_delay": 0.1}),
        "stock, max_delay 0.05": (SqliteHuey, {"initial_delay": 0.01, "max_delay": 0.05}),
        "stock, huey defaults": (SqliteHuey, {}),
    }
    rows, results = [], {}
    for name, (huey_class, options) in scenarios.items():
        figures = _measure(huey_class, options, workers=args.workers, samples=args.samples)
        results[name] = {"options": options, **figures}
        rows.append(
            [name, figures["p50_ms"], figures["p95_ms"], figures["max_ms"],
             figures["idle_cpu_pct"]]
        )  # fmt: skip
    print(f"\nembedded queue pick-up after an idle spell ({args.workers} worker threads)")
    common.print_table(["queue", "p50 ms", "p95 ms", "max ms", "idle CPU %"], rows)
    common.write_json("queue_wake", {"workers": args.workers, "rows": results})


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    django.setup()
    main()
