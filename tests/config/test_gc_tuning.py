"""Server and worker processes freeze their startup objects and raise the GC thresholds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config import gc_tuning

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> list[int]:
    """The numbers a fresh interpreter prints after running `code` (test settings)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [int(word) for word in done.stdout.split()]


def test_the_web_application_freezes_what_it_loaded():
    # Importing the ASGI app loads Django, every app, the URLconf and the views: tens of
    # thousands of objects that full collections no longer walk.
    frozen, *thresholds = _run(
        "import gc, config.asgi; print(gc.get_freeze_count(), *gc.get_threshold())"
    )
    assert frozen > 50_000
    assert tuple(thresholds) == gc_tuning.THRESHOLDS


def test_a_worker_process_is_tuned_before_its_consumer_starts():
    # Our run_huey replaces huey's; the consumer it starts reports what it finds.
    frozen, young_threshold = _run(
        "import gc, django; django.setup()\n"
        "from huey.contrib.djhuey import HUEY\n"
        "import threading\n"
        "class Consumer:\n"
        "    shutdown_timeout, stop_flag = 5, threading.Event()\n"
        "    def run(self): print(gc.get_freeze_count(), gc.get_threshold()[0])\n"
        "HUEY.create_consumer = lambda **options: Consumer()\n"
        "from django.core.management import call_command\n"
        "call_command('run_huey')\n"
    )
    assert frozen > 10_000
    assert young_threshold == gc_tuning.THRESHOLDS[0]


def test_tuning_twice_freezes_nothing_more():
    first, added_by_second_call = _run(
        "import gc\n"
        "from config import gc_tuning\n"
        "gc_tuning.tune_for_server(); first = gc.get_freeze_count()\n"
        "junk = [[i] for i in range(10_000)]\n"
        "gc_tuning.tune_for_server(); print(first, gc.get_freeze_count() - first)\n"
    )
    assert first > 1_000
    assert added_by_second_call == 0
