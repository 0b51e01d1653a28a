"""Scale-out end to end: two web processes, one `run_huey` worker, PostgreSQL and Redis.

The POST, the generation and each SSE connection happen in different processes: the
message is sent to web A, read from web B until half-way, and the reader reconnects to
web A with Last-Event-ID. The text must arrive whole, once, with increasing ids.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from providers.fake_upstream import Knobs
from tests.deploy import harness
from tests.generation.attachment_files import image_bytes

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Database 14: apart from the test suite's 15 (see tests/generation/conftest.py), and a
# key prefix of the run's own within it.
REDIS_URL = "redis://127.0.0.1:6379/14"
TOKENS = 40
DELAY_MS = 25  # about a second of streaming: time to cut the reader half-way


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, str, harness.Setup]]:
    """(web A url, web B url, setup) for the processes of a scale-out deployment."""
    # The server the suite runs on (make test's DATABASE_URL); a database of our own on it.
    server_url = harness.with_database(os.environ["DATABASE_URL"], "postgres")
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-e2e-") as tmp,
        harness.throwaway_postgres(server_url, "switchboard_e2e") as database_url,
    ):
        # Keys under a prefix of this run's own: two runs on one host do not collide.
        prefix = harness.redis_key_prefix("e2e")
        env = harness.app_env(
            Path(tmp),
            database_url=database_url,
            redis_url=REDIS_URL,
            embedded=False,
            REDIS_KEY_PREFIX=prefix,
        )
        procs = harness.Processes(Path(tmp))
        try:
            fake_port, port_a, port_b = (harness.free_port() for _ in range(3))
            procs.fake_upstream(fake_port, env, ttft_ms=50, delay_ms=DELAY_MS, tokens=TOKENS)
            setup = harness.prepare_database(env, f"http://127.0.0.1:{fake_port}/v1")
            procs.web("web_a", port_a, env)
            procs.web("web_b", port_b, env)
            procs.worker("worker", env, workers=2)
            for port in (fake_port, port_a, port_b):
                procs.wait_for_port(port)
            yield f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}", setup
            procs.check_alive()
        except Exception:
            for name in procs.running:
                sys.stderr.write(f"--- {name} log ---\n{procs.log_tail(name)}\n")
            raise
        finally:
            procs.stop_all()
            harness.delete_redis_keys(REDIS_URL, prefix)


def test_stream_and_reconnect_across_web_processes(cluster) -> None:
    web_a, web_b, setup = cluster
    expected = "".join(Knobs(tokens=TOKENS).text_tokens())

    cookies = harness.login(web_a, setup.username, setup.password)
    with httpx2.Client(base_url=web_a, cookies=cookies, timeout=10) as client:
        sent = client.post(
            "/send/",
            data=harness.send_form(setup.provider_id, "Hello from web A"),
            headers=harness.htmx_headers(cookies),
        )
    assert sent.status_code == 200, sent.text[:500]
    found = re.search(r'data-stream-url="([^"]+)"', sent.text)
    assert found, "the sent partial opens an SSE stream"
    stream_path = found.group(1)

    first = harness.read_sse(web_b, stream_path, cookies, stop_after_chars=len(expected) // 2)
    first_deltas = [e for e in first if e.event == "delta"]
    assert first_deltas, "web B streamed text before the reconnect"
    assert not any(e.event == "done" for e in first), "the reader left half-way"
    rest = harness.read_sse(web_a, stream_path, cookies, last_event_id=first_deltas[-1].id)

    deltas = first_deltas + [e for e in rest if e.event == "delta"]
    ids = [e.id for e in deltas]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted({i for i in ids if i is not None}), f"event ids increase strictly: {ids}"
    assert "".join(e.data for e in deltas) == expected, "the whole text, exactly once"
    assert ids[-1] == len(expected), "the last id is the text's length"
    assert rest[-1].event == "done"


def test_healthz_on_both_web_processes(cluster) -> None:
    web_a, web_b, _ = cluster
    for base in (web_a, web_b):
        health = httpx2.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json() == {
            "status": "ok",
            "checks": {"database": "ok", "cache": "ok", "queue": "ok", "relay": "ok"},
        }


def test_an_attachment_sent_to_one_web_process_is_served_by_the_other(cluster) -> None:
    """Attachments live in the database: no volume is shared between the processes."""
    web_a, web_b, setup = cluster
    picture = image_bytes("PNG")
    cookies = harness.login(web_a, setup.username, setup.password)
    with httpx2.Client(base_url=web_a, cookies=cookies, timeout=10) as client:
        sent = client.post(
            "/send/",
            data=harness.send_form(setup.provider_id, "What is in this picture?"),
            files={"attachments": ("picture.png", picture, "application/octet-stream")},
            headers=harness.htmx_headers(cookies),
        )
    assert sent.status_code == 200, sent.text[:500]
    found = re.search(r'href="(/attachments/\d+)"', sent.text)
    assert found, "the sent question shows its attachment"
    stream_path = re.search(r'data-stream-url="([^"]+)"', sent.text)
    assert stream_path
    # The worker (a third process) read it too: the answer completes.
    events = harness.read_sse(web_a, stream_path.group(1), cookies)
    assert events[-1].event == "done"
    assert "is-complete" in events[-1].data

    served = httpx2.get(f"{web_b}{found.group(1)}", cookies=cookies, timeout=10)
    assert served.status_code == 200
    assert served.content == picture
    assert served.headers["content-type"] == "image/png"
    thumb = httpx2.get(f"{web_b}{found.group(1)}/thumb", cookies=cookies, timeout=10)
    assert thumb.status_code == 200
    assert thumb.headers["content-type"].startswith("image/")
