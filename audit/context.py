"""Who is acting and from where, for the audit records made during a request.

`AuditContextMiddleware` puts the request in a context variable for the length of the
request; the audit handlers (model and auth signals, which receive no request) read the
acting user and the client address from it. A context variable, not a thread-local:
asgiref copies context variables into the thread a sync view runs on and into the event
loop an async view runs on, so the same request is seen on either side.

The client address is REMOTE_ADDR only, as django-axes counts it (config/settings.py).
Behind the shipped proxy, uvicorn's `--proxy-headers` sets REMOTE_ADDR from
X-Forwarded-For, and only for a proxy it trusts (FORWARDED_ALLOW_IPS, 127.0.0.1 by
default); a client's own X-Forwarded-For header is never read here, since anyone can
send one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponseBase

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SYSTEM = "system"  # no request: a management command, a task, a shell
ANONYMOUS = "anonymous"  # a request with no one signed in
SSO = "sso"  # a sign-in (single sign-on) changed the user

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_actor_name: ContextVar[str | None] = ContextVar("audit_actor_name", default=None)


class AuditContextMiddleware:
    """Makes the request known to the audit handlers (after AuthenticationMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Name the actor of what the block does, e.g. ``with acting_as("sso"):`` around a
    sign-in's group sync, or a command's name around its changes."""
    token = _actor_name.set(name)
    try:
        yield
    finally:
        _actor_name.reset(token)


def current_request() -> HttpRequest | None:
    return _request.get()


def client_ip(request: HttpRequest | None) -> str | None:
    address = request.META.get("REMOTE_ADDR") if request is not None else None
    if not address:
        return None  # e.g. uvicorn on a unix socket
    try:
        # Without an IPv6 zone ("%eth0"): PostgreSQL's inet column refuses one.
        return str(ipaddress.ip_address(str(address).split("%")[0]))
    except ValueError:
        return None


@dataclass(frozen=True)
class Actor:
    user: User | None
    name: str


def current_actor() -> Actor:
    """The signed-in user of the current request, a name given with `acting_as`,
    "anonymous" for a request with no one signed in, or "system" outside requests."""
    named = _actor_name.get()
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and user.is_authenticated:
        return Actor(user=user, name=named or user.get_username())
    if named:
        return Actor(user=None, name=named)
    return Actor(user=None, name=ANONYMOUS if request is not None else SYSTEM)
