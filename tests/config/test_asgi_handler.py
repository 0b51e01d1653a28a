"""The web process runs every request's sync work on a few kept threads ("lanes")."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connection

from config.asgi_handler import LaneASGIHandler

pytestmark = pytest.mark.django_db(transaction=True)


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _call(
    handler: LaneASGIHandler, path: str, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []
    requested = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not requested.is_set():
            requested.set()
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the response is sent
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope(path)
    scope["method"] = method
    if body:
        scope["headers"] = [
            *scope["headers"],
            (b"content-type", b"application/x-www-form-urlencoded"),
        ]
    await handler(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, content


async def _get(handler: LaneASGIHandler, path: str) -> int:
    return (await _call(handler, path))[0]


class _CountingLanes:
    """Counts the calls each request hands to a lane (a thread hop each)."""

    def __init__(self, handler: LaneASGIHandler, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = handler.pick_lane

        def pick() -> Any:
            lane = original()
            submit = lane.submit

            def counted(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return submit(fn, *args, **kwargs)

            monkeypatch.setattr(lane, "submit", counted)
            return lane

        monkeypatch.setattr(handler, "pick_lane", pick)


def test_many_concurrent_requests_share_the_few_lane_threads():
    handler = LaneASGIHandler(threads=3)
    seen: list[tuple[int, str, int]] = []  # (connection, thread name, thread id) per request

    def started(**_: Any) -> None:
        seen.append((id(connection), threading.current_thread().name, threading.get_ident()))

    request_started.connect(started)
    try:

        async def burst() -> list[int]:
            return await asyncio.gather(*(_get(handler, "/healthz") for _ in range(40)))

        statuses = asyncio.run(burst())
    finally:
        request_started.disconnect(started)
    assert statuses == [200] * 40
    threads = {name for _, name, _ in seen}
    # Stock Django would have started a thread for each of the 40 requests.
    assert len(seen) == 40
    assert threads <= {"web-0_0", "web-1_0", "web-2_0"}, threads
    assert len(threads) > 1  # the burst is spread over the lanes
    assert len({ident for _, _, ident in seen}) <= 3  # OS threads, not just names


def test_a_lane_keeps_its_database_connection_from_one_request_to_the_next(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)  # SQLite's default
    handler = LaneASGIHandler(threads=1)
    opened: list[object] = []

    def finished(**_: Any) -> None:
        opened.append(connection.connection)  # the DB-API connection behind Django's

    request_finished.connect(finished)
    try:
        for _ in range(3):
            assert asyncio.run(_get(handler, "/healthz")) == 200
    finally:
        request_finished.disconnect(finished)
    assert opened[0] is not None
    assert opened[0] is opened[1] is opened[2]


def test_a_busy_lane_is_passed_over_and_lanes_grow_only_to_the_limit():
    handler = LaneASGIHandler(threads=3)
    release = threading.Event()
    first = handler.pick_lane()
    assert handler.pick_lane() is first  # a free lane is reused, not a new thread made
    first.submit(release.wait)  # e.g. a sync view waiting on an upstream call
    try:
        second = handler.pick_lane()
        assert second is not first
        second.requests += 1  # an open stream: assigned, nothing in flight
        third = handler.pick_lane()
        assert third not in (first, second)
        third.submit(release.wait)
        # At the limit: the least loaded lane, the stream's, rather than a busy one.
        assert handler.pick_lane() is second
        assert len(handler.lanes) == 3
    finally:
        release.set()


def test_a_sync_view_runs_with_all_its_middleware_in_one_lane_call(monkeypatch):
    handler = LaneASGIHandler(threads=2)
    lanes = _CountingLanes(handler, monkeypatch)
    status, headers, content = asyncio.run(_call(handler, "/accounts/login/"))
    assert status == 200
    assert b"csrfmiddlewaretoken" in content
    # The middleware ran: clickjacking and CSRF headers are there.
    assert headers[b"x-frame-options"] == b"DENY"
    assert b"csrftoken=" in headers[b"set-cookie"]
    # request_started, the middleware and view, request_finished: three, not ~16.
    assert lanes.calls <= 3


def test_the_sync_path_still_enforces_csrf_and_login():
    handler = LaneASGIHandler(threads=2)
    status, _, _ = asyncio.run(_call(handler, "/send/", method="POST", body=b"text=hi"))
    assert status == 403  # no CSRF token
    status, headers, _ = asyncio.run(_call(handler, "/"))
    assert status == 302
    assert headers[b"location"].startswith(b"/accounts/login/")


def test_async_views_and_static_files_are_still_served():
    handler = LaneASGIHandler(threads=2)
    with warnings.catch_warnings():
        # Django warns when it must read a sync file iterator through a thread.
        warnings.simplefilter("error")
        status, headers, content = asyncio.run(_call(handler, "/static/css/app.css"))
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/css")
    assert content == (settings.BASE_DIR / "static/css/app.css").read_bytes()
    status, headers, _ = asyncio.run(_call(handler, "/m/1/stream/"))  # an async view
    assert status == 302  # login required
    assert headers[b"location"].startswith(b"/accounts/login/")
