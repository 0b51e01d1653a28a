"""The test identity provider in a process of its own, and a proxy before its token endpoint."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, urlencode

import requests

from tests.deploy.harness import ROOT, free_port


@dataclass
class Person:
    username: str
    password: str
    email: str
    groups: list[str]
    given_name: str = ""
    sub: str = ""


@dataclass
class ProviderProcess:
    """`python -m tests.oidc_provider` on a loopback port, ready once discovery answers."""

    data_dir: Path
    id_token_seconds: int = 3600
    port: int = field(default_factory=free_port)
    control_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token/"

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(
            PROVIDER_PORT=str(self.port),
            PROVIDER_DATABASE=str(self.data_dir / "provider.sqlite3"),
            PROVIDER_CONTROL_TOKEN=self.control_token,
            PROVIDER_ID_TOKEN_SECONDS=str(self.id_token_seconds),
            PYTHONUNBUFFERED="1",
        )
        self.log = (self.data_dir / "provider.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.oidc_provider"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the provider exited: {self.read_log()}")
            try:
                if requests.get(discovery, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                # Not listening yet, or its first answer is slow on a loaded machine.
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the provider did not answer in {timeout} s: {self.read_log()}")
            # Polling the discovery URL until it answers; this only paces the polls.
            time.sleep(0.1)

    def read_log(self) -> str:
        return (self.data_dir / "provider.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()

    def _control(self, what: str, data: dict) -> dict:
        response = requests.post(
            f"{self.url}/control/{what}",
            json=data,
            headers={"X-Control-Token": self.control_token},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def put_person(self, person: Person) -> Person:
        """Create the person at the provider, or change their password, e-mail and groups."""
        made = self._control(
            "person",
            {
                "username": person.username,
                "password": person.password,
                "email": person.email,
                "given_name": person.given_name,
                "groups": person.groups,
            },
        )
        person.sub = made["sub"]
        return person

    def register_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        redirect_uri: str,
        post_logout_redirect_uri: str = "",
    ) -> None:
        self._control(
            "client",
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [redirect_uri],
                "post_logout_redirect_uris": [post_logout_redirect_uri]
                if post_logout_redirect_uri
                else [],
            },
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tamper(id_token: str, **claims: object) -> str:
    """The same token with some claims changed and the provider's signature kept."""
    header, payload, signature = id_token.split(".")
    changed = {**json.loads(_unb64(payload)), **claims}
    return ".".join([header, _b64(json.dumps(changed).encode()), signature])


class TokenProxy:
    """A loopback proxy for the provider's token endpoint that can alter what passes.

    mode "pass": forwards both ways unchanged.
    mode "tamper": changes claims of the ID token the provider answered (`claims`).
    mode "client": redeems the code as another client (`client_id`, `client_secret`),
    so the provider's genuine answer is an ID token for that client's audience.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.claims: dict[str, object] = {}
        self.client_id = ""
        self.client_secret = ""
        self.forwarded = 0
        self.id_tokens: list[str] = []  # what the provider answered, to look for in logs
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = dict(parse_qsl(body.decode()))
                if proxy.mode == "client":
                    form.update(client_id=proxy.client_id, client_secret=proxy.client_secret)
                upstream = requests.post(
                    proxy.upstream,
                    data=urlencode(form),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=10,
                )
                proxy.forwarded += 1
                answer = upstream.content
                if upstream.status_code == 200:
                    proxy.id_tokens.append(upstream.json()["id_token"])
                if proxy.mode == "tamper" and upstream.status_code == 200:
                    tokens = upstream.json()
                    tokens["id_token"] = tamper(tokens["id_token"], **proxy.claims)
                    answer = json.dumps(tokens).encode()
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def reset(self) -> None:
        self.mode, self.claims, self.client_id, self.client_secret = "pass", {}, "", ""
        self.forwarded, self.id_tokens = 0, []

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
