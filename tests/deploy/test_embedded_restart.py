"""The embedded deployment (`manage.py serve`, as `make run` starts it) killed mid-answer.

`kill -9` leaves an answer "streaming" with whatever text its worker saved last, and
nothing of the dead process can end it. The restarted process must: the answer ends as
interrupted (failed, timeout, retryable, the saved text kept) as it starts, a browser
reconnecting to its stream gets that text and the final `done` event, and the periodic
sweep (huey's scheduler in the restarted process) is enqueued and runs.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from generation.models import Message
from providers.errors import RETRYABLE_KINDS
from providers.fake_upstream import Knobs
from tests.deploy import harness

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="the embedded deployment (SQLite) runs in the SQLite pass only",
)

TOKENS = 400
DELAY_MS = 20  # an eight-second answer: killed well before it ends
# The restarted process ends orphaned answers as it starts, before it serves.
INTERRUPTED_WITHIN = 15.0
# huey's scheduler enqueues periodic tasks as it starts, then every minute.
SWEEP_WITHIN = 15.0
# A provider on the fake whose answers are short (providers/fake_upstream/knobs.py).
SHORT = "tokens=3&delay=0&ttft=0"
# huey's line for a task it ran.
SWEEP_RAN = re.compile(r"generation\.tasks\.sweep_messages: \S+ executed in")


@dataclass
class Embedded:
    procs: harness.Processes
    env: dict[str, str]
    data_dir: Path
    setup: harness.Setup
    short_provider_id: str

    def row(self, message_id: int) -> dict[str, str]:
        # Straight from the file, as an operator would look: nothing of the app's caches.
        path = self.data_dir / "switchboard.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(
                "SELECT status, error_kind, content FROM generation_message WHERE id = ?",
                (message_id,),
            ).fetchone()
        assert found is not None, f"message {message_id} is gone"
        return dict(found)


@pytest.fixture
def embedded() -> Iterator[Embedded]:
    with tempfile.TemporaryDirectory(prefix="switchboard-embedded-") as tmp:
        data_dir = Path(tmp)
        env = harness.app_env(
            data_dir,
            database_url=f"sqlite:///{data_dir / 'switchboard.sqlite3'}",
            embedded=True,
            # huey's own lines (a periodic task enqueued and run) are at INFO.
            LOG_LEVEL="INFO",
            # One answer at a time: a second one waits in the queue.
            HUEY_WORKERS="1",
        )
        procs = harness.Processes(data_dir)
        try:
            fake_port = harness.free_port()
            procs.fake_upstream(fake_port, env, ttft_ms=50, delay_ms=DELAY_MS, tokens=TOKENS)
            procs.wait_for_port(fake_port)
            fake = f"http://127.0.0.1:{fake_port}"
            setup = harness.prepare_database(env, f"{fake}/v1")
            short = harness.add_provider(env, "Short", f"{fake}/knobs/{SHORT}/v1")
            yield Embedded(procs, env, data_dir, setup, short)
        finally:
            procs.stop_all()
            # pytest shows what a test printed only when it fails.
            for log in sorted(data_dir.glob("*.log")):
                print(f"--- {log.stem} log ---\n{procs.log_tail(log.stem, 6000)}")


def test_restart_after_kill_ends_orphaned_answers(embedded: Embedded) -> None:
    procs, setup = embedded.procs, embedded.setup
    port = harness.free_port()
    base = f"http://127.0.0.1:{port}"
    procs.serve("serve", port, embedded.env)
    procs.wait_for_port(port)

    cookies = harness.login(base, setup.username, setup.password)
    stream_path = harness.send_chat(base, cookies, setup.provider_id, "Tell me a long story")
    message_id = harness.message_id(stream_path)
    seen = harness.read_sse(base, stream_path, cookies, stop_after_chars=200)
    assert harness.delta_text(seen), "the answer streamed"
    assert not any(e.event == "done" for e in seen), "the answer is mid-stream"
    # The worker saves the text every quarter second: wait for a save, so that there is
    # a partial answer for the restart to keep.
    harness.wait_until(
        lambda: len(embedded.row(message_id)["content"]) >= 100,
        timeout=10,
        what="the worker saved part of the answer",
    )
    # A second answer waits in the queue: the one worker thread is busy with the first.
    queued_path = harness.send_chat(base, cookies, embedded.short_provider_id, "A short one")
    queued_id = harness.message_id(queued_path)
    procs.kill("serve")
    killed = embedded.row(message_id)
    assert killed["status"] == Message.Status.STREAMING, "killed mid-answer"
    assert killed["content"], "with part of the answer saved"
    assert embedded.row(queued_id)["status"] == Message.Status.PENDING

    procs.serve("serve_again", port, embedded.env)
    procs.wait_for_port(port)
    harness.wait_until(
        lambda: embedded.row(message_id)["status"] != Message.Status.STREAMING,
        timeout=INTERRUPTED_WITHIN,
        what="the restarted process ended the orphaned answer",
    )
    row = embedded.row(message_id)
    assert row["status"] == Message.Status.FAILED
    assert row["error_kind"] == "timeout"
    assert row["error_kind"] in RETRYABLE_KINDS, "the user can retry it"
    assert row["content"] == killed["content"], "the saved partial text is kept"

    # The session survives the restart (it is in the database): the page reconnects.
    events = harness.read_sse(base, stream_path, cookies, limit=10.0)
    assert events, "the reconnected stream says something"
    assert events[-1].event == "done", f"the stream ends with done: {events}"
    assert harness.delta_text(events) == row["content"], "the stream gives the stored text"
    assert "retry" in events[-1].data, "the final bubble offers a retry"
    # A browser that had seen more than was saved resumes from its own offset: done too.
    ahead = harness.read_sse(
        base, stream_path, cookies, last_event_id=len(harness.delta_text(seen)), limit=10.0
    )
    assert ahead, "the stream resumed ahead of the saved text says something"
    assert ahead[-1].event == "done"

    # The queued answer was no killed process's: the restarted process answers it whole.
    answer = harness.read_sse(base, queued_path, cookies, limit=10.0)
    assert answer[-1].event == "done"
    assert embedded.row(queued_id)["status"] == Message.Status.COMPLETE
    assert harness.delta_text(answer) == "".join(Knobs(tokens=3).text_tokens())

    # The restarted process's huey scheduler enqueues the periodic sweep and runs it.
    harness.wait_until(
        lambda: SWEEP_RAN.search(procs.log_tail("serve_again", 200_000)),
        timeout=SWEEP_WITHIN,
        what="the periodic sweep ran in the restarted process",
    )
