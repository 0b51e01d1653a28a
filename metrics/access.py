"""Who may read /metrics: a bearer token and/or an address allow-list, from settings.

- METRICS_TOKEN set: the request must send `Authorization: Bearer <token>`.
- METRICS_ALLOWED_IPS set: the client address (REMOTE_ADDR; behind the shipped nginx,
  uvicorn's proxy headers make it the real client's) must be in one of the networks.
- Both set: both are required, so a leaked token is no use from elsewhere.
- Neither: metrics are off (`Verdict.OFF`): the endpoint answers 404, as a URL that does
  not exist, rather than 403 that would say there is something behind it.
"""

from __future__ import annotations

import enum
import functools
import hmac
import ipaddress
from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    OFF = "off"  # nothing configured: 404
    NO_TOKEN = "no_token"  # token missing or wrong: 401 with WWW-Authenticate
    ADDRESS = "address"  # address not allowed: 403


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def address_allowed(address: str, entries: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return any(ip in network for network in _networks(tuple(entries)))


def token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(sent.strip().encode(), token.encode())


def verdict(request: HttpRequest) -> Verdict:
    token: str = settings.METRICS_TOKEN
    entries: list[str] = settings.METRICS_ALLOWED_IPS
    if not token and not entries:
        return Verdict.OFF
    if entries and not address_allowed(request.META.get("REMOTE_ADDR", ""), entries):
        return Verdict.ADDRESS
    if token and not token_matches(request, token):
        return Verdict.NO_TOKEN
    return Verdict.ALLOWED
