from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: in the suite's own process some test has imported every tasks
# module long ago.
_PERIODIC_AT_START = """
import datetime, django
django.setup()
from config.embedded_worker import create_consumer
consumer = create_consumer(workers=1)
print(sorted(task.name for task in consumer.huey.read_periodic(datetime.datetime.now())))
"""


def test_the_embedded_consumer_starts_with_the_periodic_sweep(tmp_path):
    # huey's scheduler enqueues the periodic tasks registered when it looks. A process
    # (re)started after a crash must run the sweep (it recovers lost and stuck answers)
    # without waiting for some request to import the tasks module.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings_test", DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", _PERIODIC_AT_START],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep_messages" in done.stdout.strip().splitlines()[-1]
