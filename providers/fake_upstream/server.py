"""`FakeUpstream`: the fake served by uvicorn on a loopback port in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import uvicorn

from providers.fake_upstream.app import FakeUpstreamApp, RecordedRequest, Records
from providers.fake_upstream.knobs import Knobs

_START_TIMEOUT = 10.0


class FakeUpstream:
    """Start with `start()` (or use as a context manager); `.url` is e.g. ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        defaults: Knobs | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "critical",
    ) -> None:
        self.records = Records()
        self.app = FakeUpstreamApp(defaults or Knobs(), self.records)
        self._initial_defaults = self.app.defaults
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            self.app,
            log_level=log_level,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def openai_base_url(self, knobs: str = "") -> str:
        """The base URL an OpenAI-kind Provider uses, optionally with knobs in its path."""
        return f"{self._knob_root(knobs)}/v1"

    def anthropic_base_url(self, knobs: str = "") -> str:
        """The base URL an Anthropic Provider uses (the SDK adds ``/v1/...`` itself)."""
        return self._knob_root(knobs)

    def _knob_root(self, knobs: str) -> str:
        return f"{self.url}/knobs/{knobs}" if knobs else self.url

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.records.lock:
            return list(self.records.requests)

    @property
    def calls(self) -> int:
        return self.records.calls

    @property
    def early_closes(self) -> int:
        return self.records.early_closes

    def set_defaults(self, **changes: Any) -> None:
        self.app.defaults = replace(self.app.defaults, **changes)

    def reset(self) -> None:
        """Forget what was recorded and restore the defaults given at construction."""
        self.records.reset()
        self.app.defaults = self._initial_defaults

    def wait_for(self, condition: Callable[[], bool], timeout: float = 2.0) -> bool:
        """Poll `condition` (e.g. ``lambda: fake.early_closes == 1``) until true or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def start(self) -> FakeUpstream:
        self._thread = threading.Thread(
            target=self._run, name=f"fake-upstream-{self.port}", daemon=True
        )
        self._thread.start()
        if not self.wait_for(lambda: self._server.started, timeout=_START_TIMEOUT):
            raise RuntimeError("The fake upstream did not start.")
        return self

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def serve_forever(self) -> None:
        """Serve in the calling thread (the management command)."""
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
