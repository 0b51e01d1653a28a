"""A scale-out worker (`manage.py run_huey`, PostgreSQL + Redis) stopped with SIGTERM.

SIGTERM is how the Procfile's process managers and systemd stop a process. The worker
must stop as the web process does: an answer still streaming gets until shortly before
WORKER_SHUTDOWN_SECONDS to finish, then ends as interrupted with every character a
browser already saw stored, and its upstream attempt metered; then the worker exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from generation.models import Message
from providers.errors import RETRYABLE_KINDS
from tests.deploy import harness

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Database 12: apart from the suite's 15 and the multi-process test's 14. Keys are under
# a prefix of this run's own, and only those are deleted afterwards.
REDIS_URL = "redis://127.0.0.1:6379/12"
TOKENS = 400
DELAY_MS = 20  # an eight-second answer, longer than the worker's shutdown timeout
SHUTDOWN_SECONDS = 4  # WORKER_SHUTDOWN_SECONDS for this worker
EXIT_MARGIN = 2.0  # seconds past the shutdown timeout for the process to be gone


@dataclass
class ScaleOut:
    procs: harness.Processes
    database_url: str
    base_url: str
    setup: harness.Setup

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture
def scale_out() -> Iterator[ScaleOut]:
    server_url = harness.with_database(os.environ["DATABASE_URL"], "postgres")
    prefix = harness.redis_key_prefix("stop")
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-stop-") as tmp,
        harness.throwaway_postgres(server_url, "switchboard_stop") as database_url,
    ):
        env = harness.app_env(
            Path(tmp),
            database_url=database_url,
            redis_url=REDIS_URL,
            embedded=False,
            REDIS_KEY_PREFIX=prefix,
            WORKER_SHUTDOWN_SECONDS=str(SHUTDOWN_SECONDS),
            HUEY_WORKERS="4",
            LOG_LEVEL="INFO",
        )
        procs = harness.Processes(Path(tmp))
        try:
            fake_port, web_port = harness.free_port(), harness.free_port()
            procs.fake_upstream(fake_port, env, ttft_ms=50, delay_ms=DELAY_MS, tokens=TOKENS)
            setup = harness.prepare_database(env, f"http://127.0.0.1:{fake_port}/v1")
            procs.web("web", web_port, env)
            procs.run_huey("worker", env)
            for port in (fake_port, web_port):
                procs.wait_for_port(port)
            yield ScaleOut(procs, database_url, f"http://127.0.0.1:{web_port}", setup)
        finally:
            procs.stop_all()
            harness.delete_redis_keys(REDIS_URL, prefix)
            # pytest shows what a test printed only when it fails.
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.stem} log ---\n{procs.log_tail(log.stem, 6000)}")


def test_sigterm_ends_answers_cleanly(scale_out: ScaleOut) -> None:
    base, setup = scale_out.base_url, scale_out.setup
    worker = scale_out.procs.running["worker"]
    cookies = harness.login(base, setup.username, setup.password)
    stream_path = harness.send_chat(base, cookies, setup.provider_id, "Tell me a long story")
    message_id = harness.message_id(stream_path)

    # A browser follows the answer to its end, through the worker's stop.
    events: list[harness.SSEEvent] = []
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            harness.read_sse(base, stream_path, cookies, limit=25.0, events=events)
        except BaseException as exc:  # reported by the test's thread
            failures.append(exc)

    reader = threading.Thread(target=follow, name="sse-reader", daemon=True)
    reader.start()
    harness.wait_until(
        lambda: len(harness.delta_text(events)) >= 200 or failures,
        timeout=15,
        what="the browser saw part of the answer",
    )
    assert not failures, failures

    worker.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    try:
        worker.wait(timeout=SHUTDOWN_SECONDS + EXIT_MARGIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker still runs {SHUTDOWN_SECONDS + EXIT_MARGIN} s after SIGTERM")
    stopped_in = time.monotonic() - stopping
    assert worker.returncode == 0, f"the worker exited with {worker.returncode}"

    # The worker ended its answer before it exited.
    [(status, error_kind, content)] = scale_out.query(
        "SELECT status, error_kind, content FROM generation_message WHERE id = %s", message_id
    )
    assert status == Message.Status.FAILED, f"interrupted, not {status} ({stopped_in:.1f} s)"
    assert error_kind == "timeout"
    assert error_kind in RETRYABLE_KINDS, "the user can retry it"
    # And said so on its stream: the browser's stream ends.
    reader.join(timeout=10)
    assert not reader.is_alive(), "the stream did not end after the worker stopped"
    assert not failures, failures
    assert events[-1].event == "done", "the stream says the answer ended"
    seen = harness.delta_text(events)
    assert isinstance(content, str)
    assert content.startswith(seen), "every character the browser saw is stored"
    assert len(content) >= len(seen)

    # The upstream call was made and billed: metered like a stopped answer.
    records = scale_out.query(
        "SELECT outcome, output_tokens FROM usage_usagerecord WHERE message_id = %s", message_id
    )
    assert records, "the upstream attempt has a usage record"
    assert all(int(str(output)) > 0 for _, output in records), records
