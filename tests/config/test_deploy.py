from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from providers.crypto import generate_key_entry

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_check_deploy(tmp_path):
    # The environment production runs with: nothing a test may have set for itself.
    unset = {"DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATA_DIR=str(tmp_path),
        SECRET_KEY="prod-" + "x7Qz9!kL2#mN4$pR6^tV8&wY0*aB3(cD5)eF" * 2,
        ALLOWED_HOSTS="switchboard.example.com",
        ENCRYPTION_KEYS=generate_key_entry(),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_the_shipped_proxy_keeps_idle_streams_open_past_the_heartbeat(settings):
    # A proxy that times out between heartbeats cuts every quiet stream (a slow model
    # thinking): the browser then reconnects over and over.
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    found = re.search(r"^\s*proxy_read_timeout\s+(\d+)s;", nginx, re.M)
    assert found, "deploy/nginx.conf sets no proxy_read_timeout"
    assert "proxy_buffering off;" in nginx
    assert int(found.group(1)) > 2 * settings.SWITCHBOARD["SSE_HEARTBEAT_SECONDS"]


def test_the_shipped_worker_unit_stops_the_worker_gracefully(settings):
    # systemd's stop signal must be the worker's graceful one, and it must wait longer
    # than the worker gives its answers, or it kills them mid-answer: their last text
    # and their usage records lost.
    unit = (ROOT / "deploy" / "switchboard-worker.service").read_text()
    consumer = settings.HUEY["consumer"]
    kill_signal = re.search(r"^KillSignal=SIG(\w+)$", unit, re.M)
    assert (kill_signal.group(1) if kill_signal else "TERM") == consumer["graceful_signal"]
    stop_after = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert stop_after, "the unit leaves systemd's default stop timeout"
    assert int(stop_after.group(1)) > consumer["shutdown_timeout"] + 2
