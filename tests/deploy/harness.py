"""Real Switchboard processes on loopback for the deployment test and the benchmarks.

Starts the fake upstream, uvicorn web processes and `run_huey` workers as subprocesses
with a production-like environment, on a throwaway database (SQLite in a temporary
folder, or a fresh PostgreSQL database that is dropped afterwards). Every wait is
bounded, and `Processes.stop_all` kills whatever is left.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx2

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.deploy.settings"
PASSWORD = "pw-deploy-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """`url` (a PostgreSQL URL) naming the database `name` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextlib.contextmanager
def throwaway_postgres(server_url: str, prefix: str) -> Iterator[str]:
    """A fresh database named `<prefix>_<random>` on the server of `server_url`, dropped at
    the end (WITH (FORCE): a killed process may still hold a connection)."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_key_prefix(name: str) -> str:
    """A REDIS_KEY_PREFIX of this run's own: two runs on one host share no key."""
    return f"switchboard-{name}-{secrets.token_hex(4)}"


def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete the keys of one run (every key the app writes contains its prefix)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)


def flush_redis(url: str) -> None:
    # Only ever a database number of our own (never the test suite's 15): a queue left
    # over from a killed run would hand our worker tasks for rows that do not exist.
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()


def app_env(
    data_dir: Path, *, database_url: str, redis_url: str = "", embedded: bool, **extra: str
) -> dict[str, str]:
    from providers.crypto import generate_key_entry

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DJANGO_", "DATABASE_", "REDIS_", "HUEY_", "ENCRYPTION_", "METRICS_", "PROMETHEUS_")
        )
    }
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATA_DIR=str(data_dir),
        SECRET_KEY=secrets.token_urlsafe(50),
        ENCRYPTION_KEYS=generate_key_entry(),
        HTTPS="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEMO_PROVIDER="false",
        LOG_LEVEL="WARNING",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        EMBEDDED_WORKER="true" if embedded else "false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


_SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from generation.api_tokens import ApiToken
from providers.models import Provider
call_command("migrate", interactive=False, verbosity=0)
args = json.loads({args!r})
user = get_user_model().objects.create_user(args["username"], password=args["password"])
provider = Provider(name="Fake", kind="openai", base_url=args["base_url"],
                    default_model="fake-model")
provider.set_api_key("sk-deploy-0123456789")
provider.save()
print(json.dumps({{"provider": str(provider.pk),
                  "token": ApiToken.issue(user=user, name="deploy")[1]}}))
"""


@dataclass(frozen=True)
class Setup:
    username: str
    password: str
    provider_id: str
    api_token: str


def prepare_database(env: dict[str, str], fake_openai_base_url: str) -> Setup:
    """Migrate, create a user, an OpenAI-kind provider on the fake and an API token."""
    args = {"username": "deploy", "password": PASSWORD, "base_url": fake_openai_base_url}
    output = _run_script(env, _SETUP.format(args=json.dumps(args)), "preparing the database")
    made = json.loads(output)
    return Setup(args["username"], PASSWORD, made["provider"], made["token"])


def _run_script(env: dict[str, str], script: str, doing: str, timeout: float = 120) -> str:
    """Run `script` in a fresh interpreter with the app's environment; its last line."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{doing} failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


_ADD_PROVIDER = """
import django
django.setup()
from providers.models import Provider
provider = Provider(name={name!r}, kind="openai", base_url={base_url!r},
                    default_model="fake-model")
provider.set_api_key("sk-deploy-0123456789")
provider.save()
print(provider.pk)
"""


def add_provider(env: dict[str, str], name: str, fake_openai_base_url: str) -> str:
    """Another OpenAI-kind provider on the fake (its base URL may carry knobs); its id."""
    script = _ADD_PROVIDER.format(name=name, base_url=fake_openai_base_url)
    return _run_script(env, script, "adding a provider", timeout=60)


@dataclass
class Processes:
    """Subprocesses with their output in log files; `stop_all` always cleans up."""

    log_dir: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        # A session of its own: stop_all signals the whole group (uvicorn, huey threads).
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running[name] = proc
        return proc

    def web(self, name: str, port: int, env: dict[str, str], *extra: str) -> None:
        argv = [sys.executable, "-m", "uvicorn", "config.asgi:application"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        self.start(name, [*argv, "--log-level", "warning", *extra], env)

    def worker(self, name: str, env: dict[str, str], workers: int = 8) -> None:
        argv = [sys.executable, "manage.py", "run_huey", "--workers", str(workers)]
        self.start(name, [*argv, "--worker-type", "thread", "--no-periodic"], env)

    def serve(self, name: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`manage.py serve`: the embedded deployment's one process, as `make run` starts it."""
        argv = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
        return self.start(name, argv, env)

    def run_huey(self, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`manage.py run_huey` with no options, as the Procfile and the systemd unit run it."""
        return self.start(name, [sys.executable, "manage.py", "run_huey"], env)

    def kill(self, name: str) -> None:
        """SIGKILL: the process dies where it stands, nothing of it runs afterwards."""
        proc = self.running.pop(name)  # its log stays readable
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def fake_upstream(
        self, port: int, env: dict[str, str], *, ttft_ms: int, delay_ms: int, tokens: int
    ) -> None:
        argv = [sys.executable, "manage.py", "fake_upstream", "--port", str(port)]
        argv += ["--ttft-ms", str(ttft_ms), "--delay-ms", str(delay_ms), "--tokens", str(tokens)]
        self.start("fake_upstream", argv, env)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def wait_for_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on port {port} after {timeout} s")

    def stop_all(self, grace: float = 5.0) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.running.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for log in self._logs:
            log.close()
        self.running.clear()


def login(base_url: str, username: str, password: str) -> httpx2.Cookies:
    """Sign in through the login form; returns the session and CSRF cookies."""
    with httpx2.Client(base_url=base_url, timeout=10) as client:
        client.get("/accounts/login/").raise_for_status()
        token = client.cookies["csrftoken"]
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        response = client.post("/accounts/login/", data=form)
        if response.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"login failed with {response.status_code}")
        return client.cookies


def send_form(provider_id: str, text: str) -> dict[str, str]:
    return {"text": text, "provider": provider_id, "model": "", "conversation": ""}


def htmx_headers(cookies: httpx2.Cookies) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRFToken": cookies["csrftoken"]}


@dataclass
class SSEEvent:
    event: str = "message"
    data: str = ""
    id: int | None = None


def parse_block(block: str) -> SSEEvent | None:
    """One SSE event block, or None for a comment (a heartbeat)."""
    event, data = SSEEvent(), []
    for line in block.split("\n"):
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event.event = value
        elif name == "id":
            event.id = int(value)
    if not data and event.event == "message":
        return None
    # Deltas are HTML-escaped text (see generation/rendering.py).
    event.data = "\n".join(data) if event.event == "done" else html.unescape("\n".join(data))
    return event


def read_sse(
    base_url: str,
    path: str,
    cookies: httpx2.Cookies,
    *,
    last_event_id: int | None = None,
    stop_after_chars: int | None = None,
    limit: float = 15.0,
    events: list[SSEEvent] | None = None,
) -> list[SSEEvent]:
    """The events of one SSE connection, up to its `done`, or closed early once
    `stop_after_chars` of text came. Each event is appended to `events` as it arrives (a
    list another thread may watch). The whole read takes at most `limit` seconds."""
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    events = [] if events is None else events
    deadline = time.monotonic() + limit
    with (
        httpx2.Client(base_url=base_url, cookies=cookies, timeout=httpx2.Timeout(limit)) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        for chunk in response.iter_text():
            assert time.monotonic() < deadline, "the stream did not finish in time"
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                if (event := parse_block(block)) is None:
                    continue
                events.append(event)
                if event.event == "done":
                    return events
                if stop_after_chars is not None and len(delta_text(events)) >= stop_after_chars:
                    return events  # leaving the block closes the connection mid-stream
    return events


def delta_text(events: list[SSEEvent]) -> str:
    """The text the deltas among `events` carry: what a browser shows of the answer."""
    return "".join(e.data for e in events if e.event == "delta")


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll `condition` until it is true, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def send_chat(base_url: str, cookies: httpx2.Cookies, provider_id: str, text: str) -> str:
    """Send a chat message as the composer does (HTMX, CSRF); the answer's stream path."""
    form = send_form(provider_id, text)
    with httpx2.Client(base_url=base_url, cookies=cookies, timeout=10) as client:
        sent = client.post("/send/", data=form, headers=htmx_headers(cookies))
    if sent.status_code != 200:
        raise RuntimeError(f"send answered {sent.status_code}: {sent.text[:500]}")
    found = re.search(r'data-stream-url="([^"]+)"', sent.text)
    if not found:
        raise RuntimeError(f"the sent partial opens no SSE stream: {sent.text[:2000]}")
    return found.group(1)


def message_id(stream_path: str) -> int:
    """The assistant message's id in its stream path (/m/<id>/stream/)."""
    found = re.fullmatch(r"/m/(\d+)/stream/", stream_path)
    if not found:
        raise ValueError(f"not a stream path: {stream_path}")
    return int(found.group(1))
